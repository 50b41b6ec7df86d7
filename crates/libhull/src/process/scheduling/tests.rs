use oci_spec::runtime::{LinuxIOPriorityBuilder, LinuxPersonalityBuilder, SchedulerBuilder};

use super::*;
use crate::process::attrs::forked::{check, ensure, run};

fn current_personality() -> libc::c_int {
    // SAFETY: 0xffffffff asks personality(2) for the current value and changes nothing.
    unsafe { libc::personality(0xffff_ffff) }
}

/// The plan of `process` and `linux` given as JSON (the rest of a minimal config).
fn plan_of(process: serde_json::Value, linux: serde_json::Value) -> Result<Scheduling, String> {
    let mut p = serde_json::json!({ "cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0} });
    p.as_object_mut()
        .unwrap()
        .extend(process.as_object().unwrap().clone());
    let process: Process = serde_json::from_value(p).unwrap();
    let linux: Linux = serde_json::from_value(linux).unwrap();
    Scheduling::plan(&process, &linux).map_err(|e| e.to_string())
}

#[test]
fn what_the_kernel_would_refuse_late_is_refused_by_the_plan_naming_the_field() {
    use serde_json::json;
    let cases = [
        (
            json!({}),
            json!({ "personality": { "domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "NO_SUCH"] } }),
            "invalid config.json: linux.personality.flags[1]: unknown personality flag \"NO_SUCH\"",
        ),
        (
            json!({ "scheduler": { "policy": "SCHED_FIFO", "priority": -1 } }),
            json!({}),
            "invalid config.json: process.scheduler.priority: -1 is out of range",
        ),
        (
            json!({ "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 8 } }),
            json!({}),
            "invalid config.json: process.ioPriority.priority: 8: priority must be 0 to 7",
        ),
        (
            json!({ "execCPUAffinity": { "initial": "0", "final": "70000" } }),
            json!({}),
            "invalid config.json: process.execCPUAffinity.final: CPU list \"70000\": \
             CPU 70000 is above the supported 65536",
        ),
        (
            json!({ "execCPUAffinity": { "initial": "3-1" } }),
            json!({}),
            "invalid config.json: process.execCPUAffinity.initial: CPU list \"3-1\": \
             range \"3-1\" runs backwards",
        ),
    ];
    for (process, linux, want) in cases {
        assert_eq!(plan_of(process, linux).unwrap_err(), want);
    }
    let none = plan_of(json!({}), json!({})).unwrap();
    assert_eq!(none, Scheduling::default());
}

#[test]
fn cpu_lists_parse_like_runc() {
    let mask = |l: &str| CpuSet::parse(l).map(|c| c.mask);
    assert_eq!(mask("0").unwrap(), [0b1]);
    assert_eq!(mask("0-3,7").unwrap(), [0b1000_1111]);
    assert_eq!(mask(" 1 , ,2-2,").unwrap(), [0b110]);
    assert_eq!(mask("64").unwrap(), [0, 1]);
    for bad in ["", ",", "3-1", "a", "1-", "-1", "70000"] {
        assert!(mask(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn personality_sets_domain_and_flags() {
    run(|| {
        let p = LinuxPersonalityBuilder::default()
            .domain(LinuxPersonalityDomain::PerLinux32)
            .flags(vec!["ADDR_NO_RANDOMIZE".to_owned()])
            .build()
            .unwrap();
        check("set personality", Persona::plan(&p).unwrap().set())?;
        let got = current_personality();
        ensure(got == 0x0040008, || format!("personality {got:#x}"))?;

        let linux = LinuxPersonalityBuilder::default()
            .domain(LinuxPersonalityDomain::PerLinux)
            .build()
            .unwrap();
        check("set personality", Persona::plan(&linux).unwrap().set())?;
        let got = current_personality();
        ensure(got == 0, || format!("personality {got:#x}"))
    });
}

#[test]
fn scheduler_applies_policy_nice_and_flags() {
    run(|| {
        let s = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedBatch)
            .nice(7)
            .flags(vec![LinuxSchedulerFlag::SchedResetOnFork])
            .build()
            .unwrap();
        check("set scheduler", Sched::plan(&s, false).unwrap().set())?;
        let attr = check("sched_getattr", sched::sched_getattr(Pid::from_raw(0)))?;
        ensure(
            attr.sched_policy == libc::SCHED_BATCH as u32
                && attr.sched_nice == 7
                && attr.sched_flags & sched::SCHED_FLAG_RESET_ON_FORK != 0,
            || format!("sched_attr {attr:?}"),
        )
    });
}

#[test]
fn scheduler_names_the_policy_the_kernel_refuses() {
    run(|| {
        let iso = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedIso)
            .build()
            .unwrap();
        let err = Sched::plan(&iso, false)
            .unwrap()
            .set()
            .err()
            .ok_or("SCHED_ISO accepted")?;
        ensure(err.to_string().contains("SCHED_ISO"), || err.to_string())
    });
}

#[test]
fn io_priority_sets_class_and_level() {
    run(|| {
        let be = LinuxIOPriorityBuilder::default()
            .class(IOPriorityClass::IoprioClassBe)
            .priority(6)
            .build()
            .unwrap();
        check(
            "set I/O priority",
            IoPrio::plan(be.class(), be.priority()).unwrap().set(),
        )?;
        let got = check("ioprio_get", sched::ioprio_get(Pid::from_raw(0)))?;
        ensure(got == (2 << 13) | 6, || format!("ioprio {got:#x}"))?;

        let idle = IoPrio::plan(IOPriorityClass::IoprioClassIdle, 0).unwrap();
        check("set I/O priority", idle.set())?;
        let got = check("ioprio_get", sched::ioprio_get(Pid::from_raw(0)))?;
        ensure(got >> 13 == 3, || format!("ioprio {got:#x}"))
    });
}

#[test]
fn cpu_affinity_pins_the_process() {
    run(|| {
        check("set CPU affinity", CpuSet::parse("0").unwrap().set())?;
        let mask = check(
            "sched_getaffinity",
            sched::sched_getaffinity(Pid::from_raw(0)),
        )?;
        ensure(
            mask.first() == Some(&1) && mask[1..].iter().all(|&w| w == 0),
            || format!("mask {mask:x?}"),
        )?;
        match CpuSet::parse("4000").unwrap().set() {
            Err(SchedError::CpuAffinity { list, .. }) if list == "4000" => Ok(()),
            other => Err(format!("expected CpuAffinity error, got {other:?}")),
        }
    });
}
