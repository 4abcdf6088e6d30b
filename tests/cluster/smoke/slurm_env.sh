#!/usr/bin/env bash
# Print the SLURM variables this job sees, sorted; nothing in a local run.
env | grep -E '^(SLURM_JOB_ID|SLURM_JOB_NAME|SLURM_JOB_PARTITION|SLURMD_NODENAME|SLURM_STEP_ID|SLURM_GPUS_ON_NODE|SLURM_JOB_GPUS|CUDA_VISIBLE_DEVICES)=' | sort || true
