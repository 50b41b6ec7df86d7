//! Integration tests: drive the built `hull` binary (or `HULL_TEST_RUNTIME`) with busybox
//! bundles and assert what the container process sees.
//!
//! Run against the reference runtime to check the tests themselves:
//! `HULL_TEST_RUNTIME=/usr/sbin/runc cargo test -p hull --test tests`
//! (`HULL_TEST_STRICT=1` also runs the tests of behaviour where hull deliberately differs
//! from runc 1.1.5; `HULL_TEST_KEEP=1` keeps each test's directory under /tmp).

mod util;

// Under tests/cases/ so that cargo does not build each module as a test binary of its own.
mod cases {
    mod bad_input;
    mod cgroups;
    mod cgroups_lifecycle;
    mod checkpoint;
    mod cli;
    mod compat;
    mod concurrency;
    mod console;
    mod cve;
    mod cve_mounts;
    mod differential;
    mod exec;
    mod hook_failures;
    mod hooks;
    mod idmap;
    mod kernel;
    mod lifecycle;
    mod load;
    mod malformed;
    mod namespaces;
    mod notify;
    mod probes;
    mod process;
    mod process_attrs;
    mod review_regressions;
    mod rootfs;
    mod rootless;
    mod runc_parity;
    mod seccomp;
    mod terminal;
}
