#!/usr/bin/env python3
"""Run the OCI runtime validation suite (opencontainers/runtime-tools) against a runtime.

Each validation/<name>/<name>.t binary runs with cwd = the suite directory, in a private scratch
directory (mode 0755) that holds its TMPDIR (where the tests put their bundles) and the runtime's
state root. RUNTIME points at a wrapper script that execs `RUNTIME_BIN --root <scratch>/state "$@"`.
After each file the runner cleans up what the test or the runtime left behind: containers still
in the state root (`delete --force`), processes the test started, mounts under the scratch
directory and empty cgroup directories the test created. TAP output is parsed per stream, the
result compared with expected.tsv, and the last line printed is `N passed, M failed, K skipped`
(M: files expected to pass that failed; K: files expected to fail that did).

See README.md next to this file. Standard library only; must run as root.
"""

import argparse
import ctypes
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EXPECTED = os.path.join(HERE, "expected.tsv")
DEFAULT_OUT = os.path.join(HERE, "work")
DEFAULT_SCRATCH = "/tmp/runtime-tools-scratch"

PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Directory names the suite's cgroup tests use (cgroups.AbsCgroupPath / RelCgroupPath).
CGROUP_TEST_NAMES = {"cgrouptest", "testdir"}

libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------------------------
# Child handling. The runner is a child subreaper, so every process a test orphans (container
# inits whose `create` exited, helpers) is re-parented to us. They must be reaped at once: a
# runtime that decides "stopped" by the init pid being gone would otherwise see a zombie as
# running. One thread reaps every child; processes the runner spawns itself are registered so
# their status is handed back instead of being discarded.


class Slot:
    def __init__(self):
        self.event = threading.Event()
        self.status = None

    def wait(self, timeout=None):
        if not self.event.wait(timeout):
            return None
        return self.status


class Reaper(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.lock = threading.Lock()
        self.managed = {}

    def spawn(self, argv, **kwargs):
        with self.lock:
            proc = subprocess.Popen(argv, **kwargs)
            slot = Slot()
            self.managed[proc.pid] = slot
            # The reaper owns the wait; keep Popen from ever waiting on this pid itself.
            proc.returncode = 0
        return proc.pid, slot

    def run(self):
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                time.sleep(0.05)
                continue
            except InterruptedError:
                continue
            if info is None:
                continue
            with self.lock:
                try:
                    _, status = os.waitpid(info.si_pid, 0)
                except ChildProcessError:
                    continue
                slot = self.managed.pop(info.si_pid, None)
            if slot is not None:
                slot.status = status
                slot.event.set()


REAPER = Reaper()


def run_cmd(argv, timeout, **kwargs):
    """Run a command through the reaper; returns (exit code or None on timeout, output)."""
    with tempfile.TemporaryFile() as out:
        pid, slot = REAPER.spawn(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kwargs)
        status = slot.wait(timeout)
        if status is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            slot.wait(5)
            code = None
        else:
            code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return code, out.read().decode(errors="replace")


# --------------------------------------------------------------------------------------------
# /proc helpers


def boottime_ticks():
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLK_TCK)


def proc_stat(pid):
    """(ppid, pgid, starttime, comm) of a pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    lpar, rpar = data.find("("), data.rfind(")")
    comm = data[lpar + 1:rpar]
    fields = data[rpar + 2:].split()
    # fields[0] is state (field 3); ppid is field 4, pgrp 5, starttime 22.
    return int(fields[1]), int(fields[2]), int(fields[19]), comm


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def unescape_mount(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mountinfo(pid="self"):
    """List of (mount_id, root, mount_point, fstype) from /proc/PID/mountinfo."""
    out = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        sep = parts.index("-")
        out.append((int(parts[0]), unescape_mount(parts[3]), unescape_mount(parts[4]), parts[sep + 1]))
    return out


def under(path, base):
    return path == base or path.startswith(base.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------
# TAP parsing. tap-go prints "TAP version 13" per stream, test lines, YAML blocks (JSON
# between "  ---" and "  ...") and a trailing plan "1..N" (AutoPlan). Some files print two
# streams; some print "1..0" and report failure only as a YAML {"error": ...}.

TEST_RE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(.*)$")
PLAN_RE = re.compile(r"^1\.\.(\d+)")


class Stream:
    def __init__(self):
        self.ok = 0
        self.notok = 0
        self.skip = 0
        self.plan = None
        self.errors = []  # non-empty YAML "error" values
        self.failures = []  # descriptions of "not ok" lines

    @property
    def total(self):
        return self.ok + self.notok

    def passed(self):
        if self.notok:
            return False
        if self.plan is None:
            return False  # incomplete stream (crash or kill before AutoPlan)
        if self.plan != self.total:
            return False
        if self.plan == 0 and self.errors:
            return False
        return True


def parse_tap(text):
    streams = []
    cur = None
    yaml_lines = None
    last_notok = False
    for line in text.splitlines():
        if yaml_lines is not None:
            if line.strip() == "...":
                try:
                    diag = json.loads("\n".join(yaml_lines))
                except ValueError:
                    diag = None
                if isinstance(diag, dict) and diag.get("error"):
                    cur.errors.append(str(diag["error"]))
                if isinstance(diag, dict) and last_notok and cur.failures:
                    extra = [f"{k}: {diag[k]}" for k in ("error", "stderr", "expected", "actual") if diag.get(k)]
                    if extra:
                        cur.failures[-1] += " -- " + "; ".join(str(e) for e in extra)
                last_notok = False
                yaml_lines = None
            else:
                yaml_lines.append(line)
            continue
        if line.startswith("TAP version"):
            cur = Stream()
            streams.append(cur)
            continue
        if cur is None:
            if TEST_RE.match(line) or PLAN_RE.match(line):
                cur = Stream()
                streams.append(cur)
            else:
                continue
        if line.strip() == "---":
            yaml_lines = []
            continue
        m = PLAN_RE.match(line)
        if m:
            cur.plan = int(m.group(1))
            continue
        m = TEST_RE.match(line)
        if m:
            last_notok = m.group(1) == "not ok"
            directive = m.group(3)
            if m.group(1) == "ok":
                cur.ok += 1
                if "# SKIP" in directive.upper():
                    cur.skip += 1
            else:
                cur.notok += 1
                cur.failures.append(directive.lstrip("- ").strip())
    return streams


# --------------------------------------------------------------------------------------------
# cgroups


def cgroup_roots():
    return [mp for _, root, mp, fstype in mountinfo() if fstype in ("cgroup", "cgroup2") and root == "/"]


def cgroup_snapshot():
    dirs = set()
    for root in cgroup_roots():
        for dirpath, dirnames, _ in os.walk(root, followlinks=False):
            for d in dirnames:
                dirs.add(os.path.join(dirpath, d))
    return dirs


def cgroup_cleanup(before, log):
    """rmdir the new, empty cgroup dirs a test created whose names are the suite's
    (cgrouptest, testdir, anything under them, or a uuid container id). Never writes a cgroup
    file. Other new dirs are only reported."""
    new = sorted(cgroup_snapshot() - before, key=lambda p: p.count("/"), reverse=True)
    removed, left = [], []
    for path in new:
        parts = path.split("/")
        ours = UUID_RE.match(parts[-1]) or any(p in CGROUP_TEST_NAMES for p in parts)
        if not ours:
            left.append(path)
            continue
        try:
            os.rmdir(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            left.append(f"{path} ({e.strerror})")
    for p in removed:
        log(f"cgroup: rmdir {p}")
    for p in left:
        log(f"cgroup: LEFT {p}")
    return removed, left


# --------------------------------------------------------------------------------------------
# One test file


class TestRun:
    def __init__(self, name, args, scratch_base, out_dir, attempt=1):
        self.name = name
        self.attempt = attempt
        self.args = args
        self.binary = os.path.join(args.suite, "validation", name, name + ".t")
        self.scratch = os.path.join(scratch_base, name if attempt == 1 else f"{name}.{attempt}")
        self.state = os.path.join(self.scratch, "state")
        self.tmp = os.path.join(self.scratch, "tmp")
        self.wrapper = os.path.join(self.scratch, "runtime")
        self.stdout_path = os.path.join(out_dir, name + ".stdout")
        self.stderr_path = os.path.join(out_dir, name + ".stderr")
        self.leftovers = []
        self.exit_code = None
        self.timed_out = False
        self.started = 0.0
        self.duration = 0.0

    def log(self, msg):
        self.leftovers.append(msg)

    def prepare(self):
        if os.path.lexists(self.scratch):
            raise RuntimeError(f"scratch dir {self.scratch} already exists")
        os.makedirs(self.scratch)
        for d in (self.scratch, self.tmp):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        os.makedirs(self.state, mode=0o711)
        argv = [self.args.runtime]
        if not self.args.no_root:
            argv += ["--root", self.state]
        argv += self.args.runtime_arg
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n')
        os.chmod(self.wrapper, 0o755)

    def start(self):
        env = dict(os.environ)
        env["TMPDIR"] = self.tmp
        env["RUNTIME"] = self.wrapper
        self.start_ticks = boottime_ticks() - 1
        self.started = time.monotonic()
        self.f_out = open(self.stdout_path, "wb")
        self.f_err = open(self.stderr_path, "wb")
        self.pid, self.slot = REAPER.spawn([self.binary], cwd=self.args.suite, env=env,
                                           stdin=subprocess.DEVNULL, stdout=self.f_out,
                                           stderr=self.f_err, start_new_session=True)

    def poll(self):
        """True once the test has finished (or was killed on timeout)."""
        if self.slot.event.is_set():
            self.exit_code = os.waitstatus_to_exitcode(self.slot.status)
            self.duration = time.monotonic() - self.started
            self.f_out.close()
            self.f_err.close()
            return True
        if time.monotonic() - self.started > self.args.timeout and not self.timed_out:
            self.timed_out = True
            self.log(f"TIMEOUT after {self.args.timeout}s: killing process group {self.pid}")
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return False

    # ---- cleanup

    def cleanup(self, serial):
        self.delete_containers()
        self.kill_processes(serial)
        self.unmount()
        self.remove_scratch()

    def delete_containers(self):
        try:
            ids = sorted(os.listdir(self.state))
        except OSError:
            return
        for cid in ids:
            if not os.path.isdir(os.path.join(self.state, cid)):
                continue
            code, out = run_cmd([self.wrapper, "delete", "--force", cid], 30)
            self.log(f"container {cid} left in state dir: delete --force -> exit {code} {out.strip()}")

    def is_ours(self, pid, st):
        """A process that this test started: its environment or working directory/root points
        at the scratch dir, or its root mount is a bundle under the scratch dir."""
        if st[2] < self.start_ticks:
            return None
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"TMPDIR=" + self.tmp.encode() + b"\0" in f.read() + b"\0":
                    return "TMPDIR in environ"
        except OSError:
            pass
        for link in ("cwd", "root"):
            try:
                if under(os.readlink(f"/proc/{pid}/{link}"), self.scratch):
                    return f"{link} in scratch"
            except OSError:
                pass
        marker = "/" + "/".join(self.scratch.split("/")[-2:]) + "/"
        for _, root, mp, _ in mountinfo(pid):
            if mp == "/" and marker in root + "/":
                return "root mount in scratch"
        return None

    def kill_processes(self, serial):
        me = os.getpid()
        for _ in range(5):
            table = {}
            for pid in all_pids():
                st = proc_stat(pid)
                if st is not None:
                    table[pid] = st
            children = {}
            for pid, st in table.items():
                children.setdefault(st[0], []).append(pid)
            victims = {}
            if serial:
                # Everything below the runner is the test's: the runner has no other children
                # while it cleans up after a test.
                for pid in children.get(me, []):
                    if pid != self.pid:
                        victims[pid] = "orphan re-parented to the runner"
            for pid, st in table.items():
                if pid in (me, 1) or pid in victims:
                    continue
                why = self.is_ours(pid, st)
                if why:
                    victims[pid] = why
            # and their descendants
            stack = list(victims)
            while stack:
                for c in children.get(stack.pop(), []):
                    if c not in victims and c != me:
                        victims[c] = "descendant of a leftover"
                        stack.append(c)
            if not victims:
                return
            for pid, why in sorted(victims.items()):
                st = table.get(pid)
                comm = st[3] if st else "?"
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.log(f"process: killed {pid} ({comm}): {why}")
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(proc_stat(p) is not None and
                                                      not _is_zombie(p) for p in victims):
                time.sleep(0.05)
        self.log("process: leftovers survived 5 kill rounds")

    def mounts_under_scratch(self):
        return [(mid, mp) for mid, _, mp, _ in mountinfo() if under(mp, self.scratch)]

    def unmount(self):
        for _ in range(10):
            mounts = self.mounts_under_scratch()
            if not mounts:
                return
            # deepest first, later mounts (stacked on top) first
            mounts.sort(key=lambda m: (m[1].count("/"), m[0]), reverse=True)
            for _, mp in mounts:
                if libc.umount2(mp.encode(), MNT_DETACH) == 0:
                    self.log(f"mount: unmounted {mp}")
                else:
                    err = ctypes.get_errno()
                    if err not in (22, 2):  # EINVAL/ENOENT: already gone with its parent
                        self.log(f"mount: umount {mp} failed: {os.strerror(err)}")
        self.log(f"mount: still mounted: {[mp for _, mp in self.mounts_under_scratch()]}")

    def remove_scratch(self):
        if self.args.keep:
            return
        if self.mounts_under_scratch():
            self.log(f"scratch: NOT removed (mounts remain): {self.scratch}")
            return
        try:
            dev = os.lstat(self.scratch).st_dev
        except FileNotFoundError:
            return
        leftover_bundles = [e for e in os.listdir(self.tmp)] if os.path.isdir(self.tmp) else []
        if leftover_bundles:
            self.log(f"files: test left {leftover_bundles} in its TMPDIR")
        _rmtree_one_fs(self.scratch, dev, self.log)


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rfind(b")") + 2:data.rfind(b")") + 3] == b"Z"
    except OSError:
        return True


def _rmtree_one_fs(path, dev, log):
    """Remove a tree without crossing into another filesystem (a leftover bind mount)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_dev != dev:
        log(f"scratch: not descending into another filesystem at {path}")
        return
    if os.path.isdir(path) and not os.path.islink(path):
        try:
            os.chmod(path, 0o700)  # a test may leave read-only dirs behind
        except OSError:
            pass
        for entry in os.listdir(path):
            _rmtree_one_fs(os.path.join(path, entry), dev, log)
        try:
            os.rmdir(path)
        except OSError as e:
            log(f"scratch: rmdir {path}: {e.strerror}")
    else:
        try:
            os.unlink(path)
        except OSError as e:
            log(f"scratch: unlink {path}: {e.strerror}")


# --------------------------------------------------------------------------------------------
# Results


def summarize(run):
    with open(run.stdout_path, "rb") as f:
        text = f.read().decode(errors="replace")
    streams = parse_tap(text)
    ok = sum(s.ok for s in streams)
    total = sum(s.total for s in streams)
    skip = sum(s.skip for s in streams)
    notes = []
    passed = True
    if run.timed_out:
        passed = False
        notes.append("timeout")
    elif run.exit_code != 0:
        passed = False
        notes.append(f"exit {run.exit_code}")
    for s in streams:
        if not s.passed():
            passed = False
    for s in streams:
        if s.plan is None:
            notes.append("no plan (incomplete TAP stream)")
        elif s.plan != s.total:
            notes.append(f"plan {s.plan} != {s.total} tests")
        if s.plan == 0 and s.errors:
            notes.extend(f"error: {e}" for e in s.errors)
        notes.extend(f"not ok: {d}" for d in s.failures)
    if not passed and run.exit_code not in (0, None):
        try:
            with open(run.stderr_path, "rb") as f:
                last = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
            if last:
                notes.append("stderr: " + " | ".join(ln.strip() for ln in last[-3:]))
        except OSError:
            pass
    return passed, ok, total, skip, notes


def load_expected(path):
    expected = {}
    if not path or not os.path.exists(path):
        return expected
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            name = cols[0].strip()
            if name == "test":
                continue  # header
            verdict = cols[1].strip().upper() if len(cols) > 1 else "PASS"
            reason = cols[2].strip() if len(cols) > 2 else ""
            expected[name] = (verdict, reason)
    return expected


def one_line(s, limit=160):
    s = " ".join(s.split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", required=True, help="built runtime-tools checkout (has runtimetest, validation/)")
    ap.add_argument("--runtime", required=True, help="runtime binary, e.g. /usr/sbin/runc")
    ap.add_argument("--only", nargs="+", action="extend", default=[], metavar="NAME",
                    help="run only these test files (names as in validation/)")
    ap.add_argument("--skip", nargs="+", action="extend", default=[], metavar="NAME", help="do not run these")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per test file (default 60)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="test files run at once (default 1; cgroup files always run alone)")
    ap.add_argument("--expected", default=DEFAULT_EXPECTED, help="expected-results TSV (default: expected.tsv)")
    ap.add_argument("--out", help="directory for results.tsv, per-test stdout/stderr, leftovers.log "
                                   "(default: work/<runtime basename> next to this script)")
    ap.add_argument("--scratch", default=DEFAULT_SCRATCH, help=f"scratch base directory (default {DEFAULT_SCRATCH})")
    ap.add_argument("--no-root", action="store_true", help="do not pass --root <state dir> to the runtime")
    ap.add_argument("--runtime-arg", action="append", default=[], metavar="ARG",
                    help="extra global argument for the runtime (repeatable), e.g. --runtime-arg=--debug")
    ap.add_argument("--retry", type=int, default=0, metavar="N",
                    help="re-run a failing file up to N more times (timing-sensitive tests on a loaded "
                         "machine); a file that passes on a retry is reported as flaky")
    ap.add_argument("--keep", action="store_true", help="keep scratch dirs (mounts and processes are still cleaned)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print failure details under each FAIL line")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("run.py: must run as root")
    args.suite = os.path.abspath(args.suite)
    args.runtime = os.path.abspath(args.runtime)
    if not os.access(args.runtime, os.X_OK):
        sys.exit(f"run.py: runtime {args.runtime} is not executable")
    for need in ("runtimetest", "rootfs-amd64.tar.gz"):
        if not os.path.exists(os.path.join(args.suite, need)):
            sys.exit(f"run.py: {args.suite}/{need} missing: build the suite first (see README.md)")

    vdir = os.path.join(args.suite, "validation")
    available = sorted(n for n in os.listdir(vdir)
                       if os.path.exists(os.path.join(vdir, n, n + ".t")))
    if args.only:
        unknown = [n for n in args.only if n not in available]
        if unknown:
            sys.exit(f"run.py: no such test file(s): {' '.join(unknown)}")
        names = [n for n in available if n in args.only]
    else:
        names = available
    names = [n for n in names if n not in args.skip]
    if not names:
        sys.exit("run.py: no test selected")

    out_dir = os.path.abspath(args.out or os.path.join(DEFAULT_OUT, os.path.basename(args.runtime)))
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    scratch_base = os.path.join(os.path.abspath(args.scratch), f"{stamp}-{os.getpid()}")
    os.makedirs(scratch_base)
    for d in (os.path.dirname(scratch_base), scratch_base):
        os.chmod(d, 0o755)  # a 0700 parent breaks the user-namespace tests

    expected = load_expected(args.expected)

    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("run.py: prctl(PR_SET_CHILD_SUBREAPER) failed")
    REAPER.start()

    leftover_log = open(os.path.join(out_dir, "leftovers.log"), "w")
    results = []
    regressions = []
    queue = list(names)
    attempts = {}
    running = []
    idle_done = []  # finished since the last idle point (for cgroup attribution)
    cg_before = cgroup_snapshot()
    n_pass = n_fail = 0
    interrupted = False

    def exclusive(name):
        return "cgroup" in name or name.startswith("delete_")

    try:
        while queue or running:
            while queue and len(running) < max(1, args.jobs):
                nxt = queue[0]
                if running and (exclusive(nxt) or any(exclusive(r.name) for r in running)):
                    break
                queue.pop(0)
                run = TestRun(nxt, args, scratch_base, out_dir, attempts.get(nxt, 0) + 1)
                attempts[nxt] = run.attempt
                run.prepare()
                run.start()
                running.append(run)
            time.sleep(0.05)
            for run in [r for r in running if r.poll()]:
                running.remove(run)
                run.cleanup(serial=(args.jobs <= 1))
                idle_done.append(run)
            if running or not idle_done:
                continue
            # Nothing runs: attribute new cgroup dirs to the files that just finished.
            finished = [r.name for r in idle_done]

            def cg_log(msg, last=idle_done[-1], finished=finished):
                last.log(msg if len(finished) == 1 else f"{msg} (after {', '.join(finished)})")

            cgroup_cleanup(cg_before, cg_log)
            cg_before = cgroup_snapshot()
            for run in sorted(idle_done, key=lambda r: r.name):
                if run.leftovers:
                    leftover_log.write(f"== {run.name} (attempt {run.attempt})\n" +
                                       "".join(f"  {m}\n" for m in run.leftovers))
                    leftover_log.flush()
                passed, ok, total, skip, notes = summarize(run)
                if not passed and run.attempt <= args.retry and \
                        expected.get(run.name, ("PASS", ""))[0] != "FAIL":
                    print(f"# {run.name} failed (attempt {run.attempt}), retrying", flush=True)
                    queue.insert(0, run.name)
                    continue
                exp, reason = expected.get(run.name, (None, ""))
                verdict = "PASS" if passed else "FAIL"
                mark = ""
                if exp is None:
                    mark = "(not in expected file)"
                elif exp == "PASS" and not passed:
                    mark = "REGRESSION: expected PASS"
                    regressions.append(run.name)
                elif exp == "FAIL" and passed:
                    mark = f"IMPROVEMENT: expected FAIL ({reason})"
                elif exp == "FAIL":
                    mark = f"expected FAIL: {reason}"
                n_pass += passed
                n_fail += not passed
                line = f"{verdict} {run.name} {ok}/{total}"
                if run.timed_out:
                    line += " TIMEOUT"
                if passed and run.attempt > 1:
                    line += f" (flaky: passed on attempt {run.attempt})"
                    notes.insert(0, f"flaky: passed on attempt {run.attempt}")
                if mark:
                    line += f"  [{mark}]"
                print(line, flush=True)
                if args.verbose and not passed:
                    for n in notes[:8]:
                        print("    " + one_line(n), flush=True)
                results.append((run.name, verdict, ok, total, skip, run.exit_code,
                                f"{run.duration:.1f}", exp or "", "; ".join(one_line(n, 300) for n in notes[:6])))
            idle_done = []
    except KeyboardInterrupt:
        interrupted = True
        print("# interrupted: cleaning up the running file(s)", flush=True)
    finally:
        for run in running:
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            run.cleanup(serial=(args.jobs <= 1))
            leftover_log.write(f"== {run.name} (attempt {run.attempt}, interrupted)\n" +
                               "".join(f"  {m}\n" for m in run.leftovers))
        if running:  # interrupted: still remove the cgroup dirs the killed files created
            cgroup_cleanup(cg_before, lambda m: leftover_log.write(f"  {m} (interrupted run)\n"))
        leftover_log.close()
        if not args.keep:
            try:
                os.rmdir(scratch_base)
            except OSError:
                pass

    with open(os.path.join(out_dir, "results.tsv"), "w") as f:
        f.write("test\tresult\tok\ttotal\tskipped\texit\tseconds\texpected\tnotes\n")
        for r in results:
            f.write("\t".join("" if v is None else str(v) for v in r) + "\n")
    ok_sum = sum(r[2] for r in results)
    total_sum = sum(r[3] for r in results)
    skip_sum = sum(r[4] for r in results)
    print(f"# assertions {ok_sum}/{total_sum} ok ({skip_sum} skipped); results in {out_dir}/results.tsv", flush=True)
    if regressions:
        print(f"# expected to PASS but failed: {' '.join(regressions)}", flush=True)
    # The closing line counts against expected.tsv, as test runners count: a file expected to
    # fail (host, suite bug, later issue) that fails is skipped, not failed.
    expected_fail = n_fail - len(regressions)
    print(f"# files: {n_pass} pass, {n_fail} fail ({expected_fail} of them expected)", flush=True)
    print(f"{n_pass} passed, {len(regressions)} failed, {expected_fail} skipped", flush=True)
    sys.exit(130 if interrupted else 1 if regressions else 0)


if __name__ == "__main__":
    main()
