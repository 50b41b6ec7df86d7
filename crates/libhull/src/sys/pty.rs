//! Pseudo-terminal ioctls nix lacks (`TIOCGPTPEER`).
