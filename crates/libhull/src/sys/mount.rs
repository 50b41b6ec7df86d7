//! New mount API syscalls nix lacks (`mount_setattr`, `open_tree`, `move_mount`).
