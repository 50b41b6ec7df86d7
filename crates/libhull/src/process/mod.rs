//! The container process: spawning the init and the ordered setup it runs before exec.

pub mod attrs;
