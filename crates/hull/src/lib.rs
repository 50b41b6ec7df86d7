//! hull's command-line table (`cli`) as a library: the `hull` binary parses argv with it, and
//! `hull-dist` generates the man pages and shell completions from it, so both always agree.

#![forbid(unsafe_code)]

pub mod cli;
