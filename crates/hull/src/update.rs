//! `update`'s flags and `-r FILE|-` as the LinuxResources delta the library applies, with
//! runc's parsing of sizes ("64M") and Go durations ("1m30s").

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use hull::cli::UpdateArgs;

/// The resources `update` changes: from the file (then the flags are ignored, as in runc),
/// else from the flags that were given.
pub fn resources(args: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(path) = &args.resources {
        let text = if path.as_os_str() == "-" {
            libhull::spec::read_input(std::io::stdin().lock())
                .context("read resources from standard input")?
        } else {
            std::fs::File::open(path)
                .and_then(libhull::spec::read_input)
                .map_err(|e| {
                    let why = libhull::logging::go_error_text(&e.to_string());
                    anyhow!("open {}: {why}", path.display())
                })?
        };
        let what = if path.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            path.display().to_string()
        };
        return serde_json::from_slice(&text).map_err(|e| anyhow!("resources from {what}: {e}"));
    }
    let mut memory = Map::new();
    let mut cpu = Map::new();
    let mut block_io = Map::new();
    let mut pids = Map::new();
    if let Some(w) = args.blkio_weight.filter(|w| *w != 0) {
        block_io.insert("weight".into(), json!(w));
    }
    if let Some(v) = args.cpuset_cpus.as_deref().filter(|v| !v.is_empty()) {
        cpu.insert("cpus".into(), json!(v));
    }
    if let Some(v) = args.cpuset_mems.as_deref().filter(|v| !v.is_empty()) {
        cpu.insert("mems".into(), json!(v));
    }
    if let Some(v) = args.cpu_idle.as_deref().filter(|v| !v.is_empty()) {
        let idle: i64 = v
            .parse()
            .map_err(|e| anyhow!("invalid value for cpu-idle: {}", go_int_error(v, &e)))?;
        cpu.insert("idle".into(), json!(idle));
    }
    for (flag, key, value) in [
        ("cpu-burst", "burst", &args.cpu_burst),
        ("cpu-period", "period", &args.cpu_period),
        ("cpu-rt-period", "realtimePeriod", &args.cpu_rt_period),
        ("cpu-share", "shares", &args.cpu_share),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let n: u64 = v
                .parse()
                .map_err(|e| anyhow!("invalid value for {flag}: {}", go_uint_error(v, &e)))?;
            cpu.insert(key.into(), json!(n));
        }
    }
    for (flag, key, value) in [
        ("cpu-quota", "quota", &args.cpu_quota),
        ("cpu-rt-runtime", "realtimeRuntime", &args.cpu_rt_runtime),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let n: i64 = v
                .parse()
                .map_err(|e| anyhow!("invalid value for {flag}: {}", go_int_error(v, &e)))?;
            cpu.insert(key.into(), json!(n));
        }
    }
    for (flag, key, value) in [
        ("memory", "limit", &args.memory),
        ("memory-swap", "swap", &args.memory_swap),
        ("kernel-memory", "kernel", &args.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &args.kernel_memory_tcp),
        (
            "memory-reservation",
            "reservation",
            &args.memory_reservation,
        ),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let n = if v == "-1" {
                -1
            } else {
                ram_in_bytes(v).map_err(|e| anyhow!("invalid value for {flag}: {e}"))?
            };
            memory.insert(key.into(), json!(n));
        }
    }
    if let Some(n) = args.pids_limit {
        pids.insert("limit".into(), json!(n));
    }
    if memory.get("limit") == Some(&json!(-1)) && !memory.contains_key("swap") {
        memory.insert("swap".into(), json!(0));
    }
    if cpu.contains_key("idle") && !cpu.contains_key("shares") {
        cpu.insert("shares".into(), json!(0));
    }
    if args.l3_cache_schema.is_some() {
        return Err(anyhow!("Intel RDT/CAT: l3 cache schema is not enabled"));
    }
    if args.mem_bw_schema.is_some() {
        return Err(anyhow!(
            "Intel RDT/MBA: memory bandwidth schema is not enabled"
        ));
    }
    let mut res = Map::new();
    for (key, map) in [
        ("memory", memory),
        ("cpu", cpu),
        ("blockIO", block_io),
        ("pids", pids),
    ] {
        if !map.is_empty() {
            res.insert(key.into(), Value::Object(map));
        }
    }
    Ok(serde_json::from_value(Value::Object(res))?)
}

fn go_int_error(v: &str, e: &std::num::ParseIntError) -> String {
    use std::num::IntErrorKind::*;
    let why = match e.kind() {
        PosOverflow | NegOverflow => "value out of range",
        _ => "invalid syntax",
    };
    format!("strconv.ParseInt: parsing {v:?}: {why}")
}

fn go_uint_error(v: &str, e: &std::num::ParseIntError) -> String {
    go_int_error(v, e).replace("ParseInt", "ParseUint")
}

/// A size as docker's `units.RAMInBytes` reads it: a number (fractions allowed) and an
/// optional binary unit k/m/g/t/p, any case, optionally followed by "b" or "ib".
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(bad()),
            };
            (&t[..t.len() - 1], 1u64 << shift)
        }
        _ => (t, 1),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    Ok((value * mult as f64) as i64)
}

/// A Go duration: "300ms", "1.5h", "2h45m", "5s".
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_end] {
            "ns" => 1e0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update_args(flags: &[&str]) -> UpdateArgs {
        use clap::Parser;
        let mut argv = vec!["hull", "update"];
        argv.extend_from_slice(flags);
        argv.push("id");
        match hull::cli::Cli::try_parse_from(argv).unwrap().command {
            Some(hull::cli::Command::Update(a)) => a,
            other => panic!("not update: {other:?}"),
        }
    }

    #[test]
    fn every_single_value_flag_lands_in_its_field() {
        let args = update_args(&[
            "--blkio-weight",
            "500",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "-1",
            "--cpu-burst",
            "1000",
            "--cpu-share",
            "512",
            "--cpu-rt-period",
            "1000000",
            "--cpu-rt-runtime",
            "950000",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems",
            "0",
            "--cpu-idle",
            "1",
            "--memory",
            "64M",
            "--memory-reservation",
            "32m",
            "--memory-swap",
            "-1",
            "--kernel-memory",
            "1g",
            "--kernel-memory-tcp",
            "2k",
            "--pids-limit",
            "20",
        ]);
        let res = serde_json::to_value(resources(&args).unwrap()).unwrap();
        let want = serde_json::json!({
            "blockIO": { "weight": 500 },
            "cpu": {
                "period": 100000, "quota": -1, "burst": 1000, "shares": 512,
                "realtimePeriod": 1000000, "realtimeRuntime": 950000,
                "cpus": "0-1", "mems": "0", "idle": 1
            },
            "memory": {
                "limit": 64 << 20, "reservation": 32 << 20, "swap": -1,
                "kernel": 1 << 30, "kernelTCP": 2048
            },
            "pids": { "limit": 20 }
        });
        for (section, fields) in want.as_object().unwrap() {
            for (k, v) in fields.as_object().unwrap() {
                assert_eq!(&res[section][k], v, "{section}.{k} in {res}");
            }
        }
    }

    #[test]
    fn flags_runc_fills_in_are_filled() {
        // memory -1 alone also lifts swap; idle alone resets shares, as runc does.
        let res = serde_json::to_value(
            resources(&update_args(&["--memory", "-1", "--cpu-idle", "0"])).unwrap(),
        )
        .unwrap();
        assert_eq!(res["memory"]["swap"], 0);
        assert_eq!(res["cpu"]["shares"], 0);
        let err = resources(&update_args(&["--cpu-share", "1.5"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for cpu-share: strconv.ParseUint: parsing \"1.5\": invalid syntax"
        );
    }

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(ram_in_bytes("64M"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("4096"), Ok(4096));
        assert_eq!(ram_in_bytes("10kb"), Ok(10240));
        assert!(ram_in_bytes("ten").is_err());
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("").is_err());
    }

    #[test]
    fn durations_as_go_reads_them() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration(""), None);
    }
}
