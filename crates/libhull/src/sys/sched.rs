//! Scheduling syscalls nix lacks (`sched_setattr`, `ioprio_set`).
