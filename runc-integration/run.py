#!/usr/bin/env python3
"""Run runc's own bats integration suite (runc v1.3.6) against an OCI runtime.

The suite must already be prepared outside this repository (see README.md):
a runc v1.3.6 source tree whose tests/cmd/_bin helpers are built.  This script
only *uses* such a tree; it never fetches or builds it.

Usage:
  run.py --suite /work/runc-bats/runc-1.3.6 --runtime /path/to/hull \
         [--only cwd.bats ...] [--timeout-per-file 300] \
         [--exclude runc-integration/excluded.tsv] [--out DIR]

For every tests/integration/*.bats file, `bats --tap FILE` is run with the
suite's RUNC variable pointing at --runtime and TMPDIR pointing at a private
per-file directory, bounded by --timeout-per-file.  Afterwards everything the
file left behind is cleaned up: containers in the state roots it created (and
new containers in the runtime's default root) via `RUNTIME --root X delete -f`,
processes whose root or cwd lies in that private directory (by pid), mounts
below it, and cgroups that appeared during the file and are empty.

Exit status: 0 when every non-excluded test passed or was skipped, 1 otherwise.
"""

import argparse
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_ROOTS = ["/run/runc", "/run/hull"]

TAP_RE = re.compile(r"^(ok|not ok) (\d+) (.*)$")
SKIP_RE = re.compile(r"^(.*?) # skip(?: (.*))?$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# exclusion list
# --------------------------------------------------------------------------
def load_exclusions(path):
    """file<TAB>test name<TAB>reason; test name '*' excludes a whole file."""
    excl = {}
    if not path or not os.path.exists(path):
        return excl
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) < 3 or not parts[2].strip():
                log(f"warning: {path}:{lineno}: need file<TAB>test<TAB>reason")
                continue
            excl[(parts[0].strip(), parts[1].strip())] = parts[2].strip()
    return excl


def excluded_reason(excl, fname, test):
    return excl.get((fname, test)) or excl.get((fname, "*"))


# --------------------------------------------------------------------------
# images: busybox rootfs from Debian's busybox-static, no network needed
# --------------------------------------------------------------------------
def go_arch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


def build_busybox_tar(dest, busybox="/bin/busybox"):
    if not os.path.exists(busybox):
        sys.exit(f"{busybox} not found: apt-get install busybox-static")
    out = subprocess.run(["file", "-L", busybox], capture_output=True,
                         text=True).stdout if shutil.which("file") else ""
    if out and "statically linked" not in out and "static-pie" not in out:
        log(f"warning: {busybox} may not be static: {out.strip()}")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True,
                             text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="busybox-rootfs.") as tmp:
        rf = os.path.join(tmp, "rootfs")
        # Like the docker-library busybox image: no /proc, /sys (tests
        # replace them with symlinks), every applet available in /bin.
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp",
                  "home", "var/tmp", "dev"]:
            os.makedirs(os.path.join(rf, d), exist_ok=True)
        os.chmod(os.path.join(rf, "tmp"), 0o1777)
        os.chmod(os.path.join(rf, "var/tmp"), 0o1777)
        os.chmod(os.path.join(rf, "root"), 0o700)
        shutil.copy2(busybox, os.path.join(rf, "bin/busybox"))
        os.chmod(os.path.join(rf, "bin/busybox"), 0o755)
        names = [os.path.basename(a) for a in applets]
        for a in applets + ["bin/" + n for n in names]:
            a = a.lstrip("/")
            if a in ("bin/busybox", ""):
                continue
            p = os.path.join(rf, a)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if os.path.lexists(p):
                continue
            # RELATIVE symlink: an absolute one would point at the host path
            os.symlink(os.path.relpath("bin/busybox", os.path.dirname(a)), p)
        with open(os.path.join(rf, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n"
                    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                    "bin:x:2:2:bin:/bin:/bin/false\n"
                    "sys:x:3:3:sys:/dev:/bin/false\n"
                    "sync:x:4:100:sync:/bin:/bin/sync\n"
                    "mail:x:8:8:mail:/var/spool/mail:/bin/false\n"
                    "www-data:x:33:33:www-data:/var/www:/bin/false\n"
                    "operator:x:37:37:Operator:/var:/bin/false\n"
                    "nobody:x:65534:65534:nobody:/home:/bin/false\n")
        with open(os.path.join(rf, "etc/group"), "w") as f:
            f.write("root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\n"
                    "tty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:8:\n"
                    "www-data:x:33:\noperator:x:37:\nstaff:x:50:\n"
                    "users:x:100:\nnogroup:x:65534:\n")
        with open(os.path.join(rf, "etc/hostname"), "w") as f:
            f.write("busybox\n")

        def owner(ti):
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            return ti
        tmpdest = dest + ".tmp"
        with tarfile.open(tmpdest, "w:xz") as t:
            for name in sorted(os.listdir(rf)):
                t.add(os.path.join(rf, name), arcname="./" + name,
                      filter=owner)
        os.rename(tmpdest, dest)
    log(f"built busybox rootfs tarball {dest} from {busybox}")


def prepare_images(suite):
    testdata = os.path.join(suite, "tests/integration/testdata")
    arch = go_arch()
    bb = os.path.join(testdata, f"busybox-{arch}.tar.xz")
    if not os.path.exists(bb):
        build_busybox_tar(bb)
    deb = os.path.join(testdata, f"debian-{arch}.tar.xz")
    if not os.path.exists(deb):
        # get-images.sh aborts (and with it every test) when it cannot
        # download the Debian image.  With no network, put the busybox rootfs
        # in its place; tests that really need Debian are in excluded.tsv.
        shutil.copy2(bb, deb)
        with open(deb + ".PLACEHOLDER", "w") as f:
            f.write("debian image is a copy of the busybox rootfs (offline)\n")
        log(f"placeholder {deb} (copy of busybox rootfs)")


# --------------------------------------------------------------------------
# cleanup helpers
# --------------------------------------------------------------------------
def list_cgroups():
    out = set()
    if not os.path.isdir(CGROUP_ROOT):
        return out
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        out.add(dirpath)
    return out


def mounts_under(prefix):
    res = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].replace("\\040", " ")
                if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
                    res.append(mp)
    except OSError:
        pass
    return res


def container_ids(runtime, root):
    try:
        r = subprocess.run([runtime, "--root", root, "list", "-q"],
                           capture_output=True, text=True, timeout=30)
        ids = r.stdout.split()
    except (subprocess.TimeoutExpired, OSError):
        ids = []
    if not ids and os.path.isdir(root):  # fall back to directory entries
        ids = [d for d in os.listdir(root)
               if os.path.isdir(os.path.join(root, d)) and
               not d.startswith(("~", "."))]
    return ids


def delete_containers(runtime, root, only=None):
    n = 0
    for cid in container_ids(runtime, root):
        if only is not None and cid not in only:
            continue
        try:
            subprocess.run([runtime, "--root", root, "delete", "-f", cid],
                           capture_output=True, timeout=30)
            n += 1
        except (subprocess.TimeoutExpired, OSError):
            pass
    return n


def state_roots_under(tmp):
    """Directories that look like runtime --root dirs (suite uses $ROOT/state)."""
    roots = []
    for dirpath, dirnames, _ in os.walk(tmp):
        if os.path.basename(dirpath) == "state":
            roots.append(dirpath)
            dirnames[:] = []
        elif "rootfs" in dirnames:
            dirnames.remove("rootfs")  # don't walk container rootfs
    return roots


def pids_rooted_under(prefix):
    pids = []
    me = os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        for link in ("root", "cwd"):
            try:
                t = os.readlink(f"/proc/{p}/{link}")
            except OSError:
                continue
            if t.startswith(prefix.rstrip("/") + "/"):
                pids.append(int(p))
                break
    return pids


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[1]), int(rest[2])  # ppid, pgid
    except (OSError, IndexError, ValueError):
        return None


def kill_tree(top):
    """SIGKILL `top` (a process we started), all its descendants, and every
    process in their process groups (bats/script put children in new
    groups; daemons such as recvtty get reparented but keep the group)."""
    for _ in range(3):
        info = {}
        for p in os.listdir("/proc"):
            if p.isdigit():
                st = _proc_stat(int(p))
                if st:
                    info[int(p)] = st
        tree = {top} if top in info else set()
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _) in info.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        groups = {info[p][1] for p in tree if p in info} - {os.getpgid(0)}
        victims = tree | {p for p, (_, g) in info.items() if g in groups}
        victims.discard(os.getpid())
        if not victims:
            return
        kill_pids(sorted(victims))
        time.sleep(0.3)


def cgroup_procs(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


SUITE_CGROUP_PARENT = "runc-cgroups-integration-test"


def is_suite_cgroup(path, suite_ids):
    rel = os.path.relpath(path, CGROUP_ROOT).split(os.sep)[1:]  # drop ctrl
    if not rel or rel == ["."]:
        return False
    if SUITE_CGROUP_PARENT in rel:
        return True
    return any(part in suite_ids for part in rel)


def cleanup_after_file(runtime, tmp, before_cgroups, default_before):
    notes = []
    suite_ids = set()
    # 1. containers in state roots the suite created under our tmp dir
    for root in state_roots_under(tmp):
        suite_ids.update(container_ids(runtime, root))
        n = delete_containers(runtime, root)
        if n:
            notes.append(f"deleted {n} container(s) in {root}")
    # 2. new containers in the runtime's default root(s)
    for root, ids in default_before.items():
        if os.path.isdir(root):
            new = set(container_ids(runtime, root)) - ids
            suite_ids.update(new)
            if new:
                delete_containers(runtime, root, only=new)
                notes.append(f"deleted {len(new)} container(s) in {root}")
    # 3. leftover processes whose root/cwd is inside the suite's tmp dir
    #    (container processes / helpers started by this file); kill by pid.
    for _ in range(3):
        pids = pids_rooted_under(tmp)
        if not pids:
            break
        kill_pids(pids)
        notes.append(f"killed pids {pids}")
        time.sleep(0.3)
    # 4. mounts below tmp, deepest first
    for mp in sorted(set(mounts_under(tmp)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
        notes.append(f"umount {mp}")
    # 5. cgroups that appeared while this file ran AND belong to the suite:
    #    below its own parent "runc-cgroups-integration-test", or named after
    #    one of the suite's containers (the runtime's default cgroup path).
    #    Other new cgroups on the machine (other users' tests, the machine's
    #    own agents) are never touched.  Kill what is in the suite's cgroups
    #    (those processes were started by the suite), then rmdir them,
    #    deepest first.
    new = sorted((cg for cg in list_cgroups() - before_cgroups
                  if is_suite_cgroup(cg, suite_ids)),
                 key=len, reverse=True)
    for cg in new:
        procs = cgroup_procs(cg)
        if procs:
            kill_pids(procs)
            notes.append(f"killed {procs} in {cg}")
    if new:
        time.sleep(0.3)
    for cg in new:
        for _ in range(5):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.2)
        else:
            notes.append(f"could not remove cgroup {cg}")
    if new:
        notes.append(f"removed {len(new)} new cgroup dir(s)")
    # 6. loop devices backed by files in tmp
    try:
        r = subprocess.run(["losetup", "-a"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if tmp in line:
                dev = line.split(":")[0]
                subprocess.run(["losetup", "-d", dev], capture_output=True)
                notes.append(f"losetup -d {dev}")
    except OSError:
        pass
    return notes


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------
def parse_tap(text):
    plan = None
    results = []  # (num, name, status, detail-lines)
    cur = None
    for line in text.splitlines():
        if plan is None and re.match(r"^1\.\.(\d+)$", line):
            plan = int(line[3:])
            continue
        m = TAP_RE.match(line)
        if m:
            ok, num, rest = m.groups()
            sm = SKIP_RE.match(rest)
            if ok == "ok" and sm:
                cur = [int(num), sm.group(1), "skip", [sm.group(2) or ""]]
            else:
                cur = [int(num), rest, "pass" if ok == "ok" else "fail", []]
            results.append(cur)
        elif cur is not None and line.startswith("#"):
            cur[3].append(line[1:].strip())
    return plan, results


def first_error(detail):
    """Pick the most telling line of a failed test's diagnostic output
    (ignoring the teardown noise)."""
    lines = []
    for l in detail:
        if l.startswith("--- teardown ---"):
            break
        if l and "(in test file" not in l and not l.startswith("from function") \
                and not l.startswith("(from function"):
            lines.append(l)
    for l in lines:
        if "level=error" in l or "level=fatal" in l or "Error:" in l:
            return l[:300]
    for l in reversed(lines):
        if re.search(r"[Ee]xpected|error|Error|failed|fatal|not found|"
                     r"No such|denied|not permitted|status=[1-9]", l) \
                and not l.startswith("`"):
            return l[:300]
    return (lines[-1] if lines else "")[:300]


def run_file(args, fname, excl, env_base, default_roots):
    integ = os.path.join(args.suite, "tests/integration")
    outdir = os.path.join(args.out, "logs")
    tmp = tempfile.mkdtemp(prefix=f"rt-{fname[:-5]}.", dir=args.tmpbase)
    os.chmod(tmp, 0o755)
    env = dict(env_base)
    env["TMPDIR"] = tmp
    env["BATS_TMPDIR"] = tmp
    before_cg = list_cgroups()
    default_before = {r: set(container_ids(args.runtime, r))
                      for r in default_roots if os.path.isdir(r)}
    t0 = time.time()
    cmd = ["bats", "--tap", os.path.join(integ, fname)]
    if not args.no_tty:
        # Like runc's CI: run under script(1) so that tests using the
        # default "terminal": true config have a controlling terminal.
        cmd = ["script", "-q", "-e", "-c", shlex.join(cmd), "/dev/null"]
    # stdin: a pipe we keep open and never write to.  With /dev/null,
    # script(1) sees EOF at once and passes it on to the pty, which leaks a
    # stray byte into the first terminal test's output.
    stdin_r, stdin_w = os.pipe()
    proc = subprocess.Popen(cmd, cwd=integ, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=stdin_r,
                            start_new_session=True)
    os.close(stdin_r)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=args.timeout_per_file)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc.pid)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out = b""
    dur = time.time() - t0
    os.close(stdin_w)
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    with open(os.path.join(outdir, fname + ".tap"), "w") as f:
        f.write(text)
        if not text.endswith("\n"):
            f.write("\n")
        if timed_out:
            f.write(f"# RUNNER: timed out after {args.timeout_per_file}s\n")
        f.write(f"# RUNNER: rc={proc.returncode} secs={dur:.1f}\n")
    notes = cleanup_after_file(args.runtime, tmp, before_cg, default_before)
    for mp in mounts_under(tmp):  # paranoia: never rm -rf through a mount
        notes.append(f"still mounted: {mp}")
    if not mounts_under(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    if notes:
        with open(os.path.join(outdir, fname + ".cleanup"), "w") as f:
            f.write("\n".join(notes) + "\n")
    return make_row(fname, text, timed_out, proc.returncode, dur, excl)


def row_from_log(path, fname, excl):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    timed_out = "# RUNNER: timed out" in text
    m = re.search(r"^# RUNNER: rc=(-?\d+) secs=([\d.]+)$", text, re.M)
    rc, dur = (int(m.group(1)), float(m.group(2))) if m else (1, 0.0)
    return make_row(fname, text, timed_out, rc, dur, excl)


def make_row(fname, text, timed_out, rc, dur, excl):
    plan, results = parse_tap(text)
    row = {"file": fname, "pass": 0, "fail": 0, "skip": 0, "excluded": 0,
           "notrun": 0, "timeout": timed_out, "rc": rc,
           "secs": dur, "failures": [], "xpass": [], "passed": []}
    seen = set()
    for num, name, st, detail in results:
        seen.add(num)
        reason = excluded_reason(excl, fname, name)
        if reason:
            row["excluded"] += 1
            if st == "pass":
                row["xpass"].append(name)
            continue
        if st == "pass":
            row["pass"] += 1
            row["passed"].append(name)
        elif st == "skip":
            row["skip"] += 1
        else:
            row["fail"] += 1
            row["failures"].append((name, first_error(detail)))
    if plan is not None:
        missing = plan - len(seen)
        if missing > 0:
            row["notrun"] = missing
    if (plan is None and not results) or (timed_out and row["notrun"]) \
            or (rc not in (0, 1) and not timed_out):
        # bats itself broke, or the file ran out of time
        if not excluded_reason(excl, fname, "*"):
            why = "timed out" if timed_out else f"bats rc={rc}"
            tail = [l for l in text.strip().splitlines()
                    if not l.startswith("# RUNNER:")]
            row["failures"].append((f"<file: {why}, "
                                    f"{row['notrun']} test(s) not run>",
                                    tail[-1][:240] if tail else ""))
            row["fail"] += 0 if results else 1
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", required=True,
                    help="prepared runc v1.3.6 source tree (outside the repo)")
    ap.add_argument("--runtime", required=True, help="hull or runc binary")
    ap.add_argument("--only", nargs="+", metavar="FILE",
                    help="only these .bats files (basename, .bats optional)")
    ap.add_argument("--timeout-per-file", type=int, default=300)
    ap.add_argument("--exclude", default=os.path.join(HERE, "excluded.tsv"))
    ap.add_argument("--known-failures",
                    default=os.path.join(HERE, "known-failures.tsv"),
                    help="tests hull still fails, each with the issue that "
                         "owns the fix: reported, but only a failure not "
                         "listed here (a regression) makes the exit status 1")
    ap.add_argument("--out", default=None,
                    help="directory for TAP logs and summary")
    ap.add_argument("--report-only", action="store_true",
                    help="do not run anything: rebuild the report from the "
                         "TAP logs already in --out (e.g. after editing the "
                         "exclusion file)")
    ap.add_argument("--no-tty", action="store_true",
                    help="do not wrap bats in script(1) (no controlling tty)")
    ap.add_argument("--tmpbase", default="/tmp",
                    help="where per-file TMPDIRs are created")
    args = ap.parse_args()

    args.suite = os.path.abspath(args.suite)
    args.runtime = os.path.abspath(args.runtime)
    integ = os.path.join(args.suite, "tests/integration")
    if not os.path.isfile(os.path.join(integ, "helpers.bash")):
        sys.exit(f"{integ}/helpers.bash not found: --suite must be a runc tree")
    if not os.access(args.runtime, os.X_OK):
        sys.exit(f"runtime {args.runtime} is not executable")
    if not shutil.which("bats"):
        sys.exit("bats not found (apt-get install bats)")
    bindir = os.path.join(args.suite, "tests/cmd/_bin")
    if not os.path.isdir(bindir):
        log(f"warning: {bindir} missing: helper binaries not built")
    if args.report_only and not args.out:
        sys.exit("--report-only needs --out DIR of an earlier run")
    if not args.report_only and os.geteuid() != 0:
        sys.exit("run as root (the suite's rootless mode is not wired up)")
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="runc-integration-out.")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)

    env = dict(os.environ)
    # get-images.sh calls `go env GOARCH`; make a Go toolchain visible.
    if not shutil.which("go"):
        for cand in sorted(os.listdir("/usr/lib"), reverse=True):
            if cand.startswith("go-") and os.path.exists(
                    f"/usr/lib/{cand}/bin/go"):
                env["PATH"] = f"/usr/lib/{cand}/bin:" + env.get("PATH", "")
                break
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    env["RUNC"] = args.runtime
    env["GOFLAGS"] = "-mod=vendor"
    env["GOPROXY"] = "off"
    env["GOTOOLCHAIN"] = "local"
    for v in ("RUNC_USE_SYSTEMD", "ROOTLESS", "ROOTLESS_FEATURES",
              "BATS_TMPDIR", "TMPDIR"):
        env.pop(v, None)

    excl = load_exclusions(args.exclude)
    if not args.report_only:
        prepare_images(args.suite)

    files = sorted(f for f in os.listdir(integ) if f.endswith(".bats"))
    if args.only:
        want = {o if o.endswith(".bats") else o + ".bats"
                for o in (os.path.basename(x) for x in args.only)}
        unknown = want - set(files)
        if unknown:
            sys.exit(f"unknown bats files: {sorted(unknown)}")
        files = [f for f in files if f in want]

    default_roots = list(DEFAULT_ROOTS)
    rows = []
    for fname in files:
        if args.report_only:
            p = os.path.join(args.out, "logs", fname + ".tap")
            if not os.path.exists(p):
                continue
            rows.append(row_from_log(p, fname, excl))
            continue
        log(f"== {fname}")
        row = run_file(args, fname, excl, env, default_roots)
        rows.append(row)
        log(f"   pass={row['pass']} fail={row['fail']} skip={row['skip']} "
            f"excluded={row['excluded']} notrun={row['notrun']}"
            f"{' TIMEOUT' if row['timeout'] else ''} ({row['secs']:.0f}s)")

    # report
    lines = []
    hdr = f"{'file':<30} {'pass':>5} {'fail':>5} {'skip':>5} {'excl':>5} {'notrun':>6}  secs"
    lines.append(f"runtime: {args.runtime}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    tot = dict(p=0, f=0, s=0, e=0, n=0)
    for r in rows:
        lines.append(f"{r['file']:<30} {r['pass']:>5} {r['fail']:>5} "
                     f"{r['skip']:>5} {r['excluded']:>5} {r['notrun']:>6} "
                     f"{r['secs']:>5.0f}{' TIMEOUT' if r['timeout'] else ''}")
        tot["p"] += r["pass"]; tot["f"] += r["fail"]; tot["s"] += r["skip"]
        tot["e"] += r["excluded"]; tot["n"] += r["notrun"]
    lines.append("-" * len(hdr))
    lines.append(f"{'TOTAL':<30} {tot['p']:>5} {tot['f']:>5} {tot['s']:>5} "
                 f"{tot['e']:>5} {tot['n']:>6}")
    fails = [(r["file"], n, e) for r in rows for n, e in r["failures"]]
    known = load_exclusions(args.known_failures)
    new_fails = [x for x in fails if not excluded_reason(known, x[0], x[1])]
    old_fails = [x for x in fails if excluded_reason(known, x[0], x[1])]
    if new_fails:
        lines.append("")
        lines.append("FAILED (not excluded, not a known failure):")
        for f, n, e in new_fails:
            lines.append(f"  {f}\t{n}\t{e}")
    if old_fails:
        lines.append("")
        lines.append(f"known failures ({len(old_fails)}, each tracked by an issue):")
        for f, n, _ in old_fails:
            lines.append(f"  {f}\t{n}\t{excluded_reason(known, f, n)}")
    ran = {(r["file"], n) for r in rows for n in r.get("passed", [])}
    fixed = sorted(k for k in known if k in ran)
    if fixed:
        lines.append("")
        lines.append("known failures that passed (remove them from the list):")
        for f, n in fixed:
            lines.append(f"  {f}\t{n}")
    xp = [(r["file"], n) for r in rows for n in r["xpass"]]
    if xp:
        lines.append("")
        lines.append("excluded but passed (consider removing from exclusions):")
        for f, n in xp:
            lines.append(f"  {f}\t{n}")
    lines.append("")
    lines.append(f"{tot['p']} passed, {tot['f']} failed, {tot['s']} skipped")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "failures.tsv"), "w") as f:
        for fl, n, e in fails:
            f.write(f"{fl}\t{n}\t{e}\n")
    log(f"logs in {args.out}")
    return 1 if new_fails else 0


if __name__ == "__main__":
    sys.exit(main())
