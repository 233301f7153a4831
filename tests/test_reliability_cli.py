"""Bad input to `python -m tuner`: one line on stderr naming the flag or file,
exit code 2, no traceback and nothing written; Ctrl-C and SIGTERM finish a
search like its end, a second signal stops it at once (the convert command
line's battery is in test_reliability_weights.py)."""

import concurrent.futures
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from keras_regnet import files
from tuner import cli, folder
from tuner.trials import read_trials_csv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--image-size", "8", "--depth", "1-3", "--w0", "8-16", "--wa", "8-16",
        "--group-width", "4,8", "--flops", "none", "--batch-size", "64"]

# (flags, the flag or file named, words of what is allowed)
SEARCH_CASES = [
    (["--max-failures", "-1"], "--max-failures", "integer >= 0"),
    (["--max-failures", "1.5"], "--max-failures", "integer"),
    (["--seed", "-1"], "--seed", "[0, 4294967295]"),
    (["--seed", "4294967296"], "--seed", "[0, 4294967295]"),
    (["--seed", "nan"], "--seed", "number"),
    (["--max-trials", "0"], "--max-trials", "integer >= 1"),
    (["--epochs", "inf"], "--epochs", "number"),
    (["--epochs", "0"], "--epochs", "integer >= 1"),
    (["--batch-size", "1e9"], "--batch-size", "[1, 65536]"),
    (["--batch-size", "True"], "--batch-size", "number"),
    (["--image-size", "5000"], "--image-size", "[8, 2048]"),
    (["--workers", "300"], "--workers", "[0, 256]"),
    (["--trials-per-worker", "0"], "--trials-per-worker", "integer >= 1"),
    (["--oracle-address", "localhost:70000", "--workers", "2"], "--oracle-address",
     "port in [0, 65535]"),
    (["--oracle-address", "nohost", "--workers", "2"], "--oracle-address", "HOST:PORT"),
    (["--learning-rate", "nan"], "--learning-rate", "number"),
    (["--learning-rate", "0"], "--learning-rate", "number > 0 or a range"),
    (["--learning-rate", "0.2-0.1"], "--learning-rate", "LO <= HI"),
    (["--weight-decay", "-1"], "--weight-decay", "number > 0 (or 0)"),
    (["--flops", "nan"], "--flops", "number"),
    (["--flops", "400M-200M"], "--flops", "LO <= HI"),
    (["--flops", "40M-20M"], "--flops", "LO <= HI"),
    (["--depth", "3-1"], "--depth", "LO <= HI"),
    (["--params", "5"], "--params", "LO-HI"),
    (["--depth", "1-100000"], "--depth", "1 <= depth <= 64"),
    (["--wa", "inf"], "--wa", "number"),
    (["--wm", "1.2-2"], "--wm", "paper's limits"),
    (["--group-width", "3"], "--group-width", "1, 2, 4, 8, 16, 32"),
    (["--space", "anynetx_a", "--wa", "10-20"], "--wa", "leave it out"),
    (["--dataset", "no_such_dataset_xyz"], "--dataset", "TensorFlow Datasets name"),
    (["--dataset", "EMPTY"], "--dataset", "found 0 class folder"),
    (["--out", "FILE"], "--out", "a folder"),
    (["--out", "FULL"], "--out", "holds no search"),
    (["--out", "UNDER_FILE"], "--out", "is a text file, not a folder"),
    (["--resume"], "--resume", "holds no search to resume"),
]


def _main(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("flags, named, allowed", SEARCH_CASES)
def test_bad_search_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, named,
                                                  allowed):
    (tmp_path / "file").write_text("mine")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    paths = {"FILE": str(tmp_path / "file"), "UNDER_FILE": str(tmp_path / "file" / "b"),
             "EMPTY": str(tmp_path / "empty"), "FULL": str(tmp_path / "full")}
    flags = [paths.get(f, f) for f in flags]
    if "--out" not in flags:
        flags += ["--out", str(tmp_path / "new")]
    line = _main(capsys, ["search", *flags])
    assert f"`{named}`" in line and allowed in line, line
    typed = flags[flags.index(named) + 1] if named in flags else "--"
    if not typed.startswith("--"):  # a flag with a value: as the user typed it
        assert repr(typed) in line, line
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "file").read_text() == "mine"
    assert os.listdir(tmp_path / "full") == ["notes.txt"]


@pytest.mark.parametrize("flags, allowed", [
    (["--top", "0"], "integer >= 1"),
    (["--bootstrap", "-5"], "integer >= 1"),
    (["--seed", "x"], "number"),
    (["--edf", "cdf"], "error, normalized"),
])
def test_bad_report_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, allowed):
    run = tmp_path / "run"
    run.mkdir()
    (run / "trials.csv").write_text("trial,trial_id,status\n")
    line = _main(capsys, ["report", str(run), *flags])
    assert f"`{flags[0]}`" in line and allowed in line, line
    assert sorted(os.listdir(run)) == ["trials.csv"]


def test_report_of_a_folder_that_is_no_run(tmp_path, capsys):
    line = _main(capsys, ["report", str(tmp_path)])
    assert "Invalid run directory" in line and "trials.csv" in line


def test_worker_outside_a_search(tmp_path, capsys, monkeypatch):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert "KERASTUNER_TUNER_ID" in _main(capsys, ["worker", "--out", str(tmp_path)])
    for name, value in (("KERASTUNER_TUNER_ID", "worker1"),
                        ("KERASTUNER_ORACLE_IP", "127.0.0.1"),
                        ("KERASTUNER_ORACLE_PORT", "1")):
        monkeypatch.setenv(name, value)
    assert "`--out`" in _main(capsys, ["worker", "--out", str(tmp_path)])


def _image_folder(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return str(root)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def test_dataset_folders_with_files_that_are_not_images(tmp_path, capsys):
    text_as_png = _image_folder(tmp_path / "a", {"cat/1.png": PNG, "dog/2.png": b"hello"})
    line = _main(capsys, ["search", "--dataset", text_as_png, "--out", str(tmp_path / "o")])
    assert "dog/2.png" in line and "Expected a PNG image" in line, line
    empty_jpeg = _image_folder(tmp_path / "b", {"cat/1.png": PNG, "dog/2.jpg": b""})
    line = _main(capsys, ["search", "--dataset", empty_jpeg, "--out", str(tmp_path / "o")])
    assert "dog/2.jpg" in line and "Expected a JPG image" in line, line
    too_few = _image_folder(tmp_path / "c", {"cat/1.png": PNG, "dog/2.png": PNG})
    line = _main(capsys, ["search", "--dataset", too_few, "--out", str(tmp_path / "o")])
    assert "at least 5 images" in line and "found 2" in line, line
    assert not (tmp_path / "o").exists()


def _saved_search(tmp_path, flags):
    """A search folder as `run_search` starts it (its search.json)."""
    out = str(tmp_path / "run")
    args = cli.build_parser().parse_args(["search", "--out", out, *flags])
    os.makedirs(out)
    folder.write_config(out, cli.check_search(args))
    return out


@pytest.mark.parametrize("changed, was, now", [
    (["--seed", "1"], "0", "1"),
    (["--space", "anynetx_c"], "'regnet'", "'anynetx_c'"),
    (["--epochs", "5"], "3", "5"),
    (["--max-failures", "0"], "3", "0"),
    (["--mixed-precision"], "False", "True"),
])
def test_resume_refuses_any_flag_that_changes_the_search(tmp_path, capsys, changed,
                                                         was, now):
    out = _saved_search(tmp_path, [])
    before = open(os.path.join(out, folder.SEARCH_JSON)).read()
    line = _main(capsys, ["search", "--out", out, "--resume", *changed])
    flag = changed[0]
    assert f"{flag} was {was}, now {now}" in line, line
    assert open(os.path.join(out, folder.SEARCH_JSON)).read() == before


def test_resume_may_only_grow_max_trials(tmp_path, capsys):
    out = _saved_search(tmp_path, ["--max-trials", "6"])
    line = _main(capsys, ["search", "--out", out, "--resume", "--max-trials", "4"])
    assert "`--max-trials`: 4" in line and "may only grow" in line


def _tuner(*args, **popen):
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quiet TensorFlow itself
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_a_user_error_answers_at_once_without_tensorflow(tmp_path):
    """The flags are checked before Keras loads: one line, exit 2, no
    traceback, no TensorFlow log, in well under the seconds TensorFlow takes
    to import."""
    code = ("import sys\nfrom tuner import cli\ntry:\n"
            f"    cli.main(['search', '--seed', '-1', '--out', {str(tmp_path / 'o')!r}])\n"
            "finally:\n    print(sorted({'keras', 'tensorflow'} & set(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: Invalid `--seed`: '-1'. Expected an integer in [0, 4294967295]."]
    assert proc.stdout.strip() == "[]"


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_search(out):
    """A long search in a subprocess, and its output lines up to trial 1's.
    Started as `... &` starts it: SIGINT ignored (the search must still
    stop on Ctrl-C and SIGTERM)."""
    proc = _tuner("search", "--max-trials", "50", "--epochs", "30", "--out", out,
                  "--verbose", "0", *TINY, preexec_fn=_ignore_sigint)
    lines = []
    while not any(re.match(r"trial 1/50 \|", line) for line in lines):
        line = proc.stdout.readline()
        assert line, "".join(lines) + proc.stderr.read()
        lines.append(line)
    return proc, lines


def test_sigterm_finishes_the_search_and_a_second_signal_stops_at_once(tmp_path):
    """SIGTERM (a scheduler's) finishes like the end of the search: summary,
    best model, exit 130. A second Ctrl-C, here while the first is being
    handled, ends the process at once. Both keep the completed trials."""
    outs = [str(tmp_path / "term"), str(tmp_path / "twice")]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        (term, term_lines), (twice, twice_lines) = pool.map(_start_search, outs)

    term.send_signal(signal.SIGTERM)
    twice.send_signal(signal.SIGINT)
    while "Interrupted: writing the summary" not in twice_lines[-1]:
        twice_lines.append(twice.stdout.readline())
        assert twice_lines[-1], "".join(twice_lines)
    start = time.time()
    twice.send_signal(signal.SIGINT)
    _, err = twice.communicate(timeout=60)
    assert twice.returncode == 130, err
    assert time.time() - start < 10
    assert "Stopped; completed trials are kept" in err and "Traceback" not in err, err

    rest, err = term.communicate(timeout=300)
    log = "".join(term_lines) + rest
    assert term.returncode == 130, log + err
    assert "Interrupted: writing the summary" in log
    assert "Stopping at the next batch" in err, err
    assert re.search(r"^Search time \d+ s, export \d+ s\. Best: trial \d+,", log, re.M), log
    assert os.path.isfile(os.path.join(outs[0], folder.BEST_KERAS))
    assert "Traceback" not in err and err.strip().endswith("Continue with --resume."), err
    for out in outs:
        rows = read_trials_csv(os.path.join(out, "trials.csv"))
        assert rows[0]["status"] == "COMPLETED"


SIGNAL_IN_A_GC_CALLBACK = """
import gc, os, signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # as __main__
from tuner import stopping

def callback(phase, info):
    # The signal arrives while the main thread runs a gc callback (JAX, which
    # TensorFlow imports, has one): an interrupt raised in it is dropped.
    gc.callbacks.remove(callback)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)
    for _ in range(10 ** 5):
        pass

stopping.stop_on_signals()
gc.callbacks.append(callback)
try:
    for batch in range(2000):
        stopping.raise_if_stopped()
        gc.collect()
        time.sleep(0.01)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_signal_stops_at_the_next_batch_wherever_it_arrives():
    """The stop is raised by the main thread's own check, not injected where
    the main thread happens to be: an interrupt injected into JAX's gc
    callback was dropped (a SIGTERMed search in CI ran to its end), one
    injected into TensorFlow's pybind11 error translation became a
    RuntimeError."""
    proc = subprocess.run([sys.executable, "-c", SIGNAL_IN_A_GC_CALLBACK],
                          text=True, capture_output=True, timeout=60)
    assert proc.stdout == "interrupted\n", proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("Stopping at the next batch (press Ctrl-C "
                                   "again to stop at once)."), proc.stderr


@pytest.mark.parametrize("command", [[], ["search"], ["report"], ["worker"]])
def test_help_needs_no_tensorflow_and_explains_every_flag(command):
    code = ("import sys\nfrom tuner import cli\ntry:\n"
            f"    cli.main({command + ['--help']!r})\n"
            "finally:\n    print(sorted({'keras', 'tensorflow'} & set(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text, loaded = proc.stdout.rstrip("\n").rsplit("\n", 1)
    assert loaded == "[]"
    # One block per flag (or sub-command): each says what it is, and gives
    # its default at most once.
    entries = re.split(r"\n(?=  \S)", text.split("\n\n", 1)[1])
    for entry in entries:
        if not entry.startswith("  "):
            continue
        words = re.sub(r"^  \S+(?: [A-Z_{][^ ]*)?(?:, -\S+(?: [A-Z_{][^ ]*)?)*", "",
                       entry).split()
        assert len(words) >= 2, entry
        assert entry.count("(default") <= 1, entry


HEADER = "trial,trial_id,status,error,flops\n"


@pytest.mark.parametrize("content, problem", [
    (HEADER + "1,00,COMPLETED,0.1\n", "line 2 has fewer cells than the header's 5"),
    (HEADER + "1,00,COMPLETED,0.1,2e6,7\n", "line 2 has more cells than the header's 5"),
    (HEADER + "1,00,COMPLETED,nan,2e6\n", "line 2: `error` is nan, expected a finite number"),
    (HEADER + "1,00,COMPLETED,0.1,-5\n", "line 2: `flops` is -5, expected a finite number >= 0"),
    (HEADER + "1,00,COMPLETED,0.1,1e999\n", "line 2: `flops` is inf"),
    ("trial,error\n1,0.1\n", "its header lacks trial_id, status"),
    ("", "its header lacks trial_id, status"),
    (b"trial,trial_id,status\n1,\xff\xfe,COMPLETED\n", "it cannot be read as CSV"),
])
def test_report_of_a_damaged_trials_csv_is_one_line(tmp_path, capsys, content, problem):
    run = tmp_path / "run"
    run.mkdir()
    path = run / "trials.csv"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    line = _main(capsys, ["report", str(run)])
    assert line.startswith(f"error: Invalid run: {str(path)!r} is damaged: {problem}"), line
    assert os.listdir(run) == ["trials.csv"]


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    """A finished 2-trial search (its flags, its folder)."""
    out = str(tmp_path_factory.mktemp("finished") / "run")
    flags = ["search", "--max-trials", "2", "--epochs", "1", "--verbose", "0", *TINY]
    proc = _tuner(*flags, "--out", out)
    log, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, log + err
    return flags, out


def _snapshot(folder_path):
    return {os.path.relpath(os.path.join(d, n), folder_path):
            open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(folder_path) for n in names}


def _damage_oracle(out):
    path = os.path.join(out, "kt_project", "oracle.json")
    text = open(path).read()
    open(path, "w").write(text[: len(text) // 2])


def _damage_trial(out):
    open(os.path.join(out, "kt_project", "trial_0", "trial.json"), "w").write("{}")


@pytest.mark.parametrize("damage, message", [
    (lambda out: open(os.path.join(out, "search.json"), "w").close(),
     "its search.json cannot be read"),
    (lambda out: open(os.path.join(out, "search.json"), "w").write("[1, 2]"),
     "its search.json cannot be read (Invalid `config`: [1, 2]"),
    (lambda out: _edit_json(out, "search.json", max_trials=-5),
     "its search.json cannot be read (Invalid `max_trials`: -5"),
    (lambda out: _edit_json(out, "search.json", epochs=float("inf")),
     "its search.json cannot be read (Invalid `epochs`: inf"),
    (_damage_oracle, "the Keras Tuner state in"),
    (_damage_trial, "the Keras Tuner state in"),
], ids=["empty", "not-an-object", "negative", "infinite", "oracle-cut", "trial-empty"])
def test_resume_of_a_damaged_search_refuses_in_one_line_and_touches_nothing(
        finished_search, tmp_path, capsys, damage, message):
    flags, finished = finished_search
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    damage(out)
    before = _snapshot(out)
    line = _main(capsys, [*flags, "--out", out, "--resume", "--max-trials", "3"])
    assert line.startswith("error: Invalid ") and message in line, line
    assert _snapshot(out) == before


def _edit_json(out, name, **changes):
    path = os.path.join(out, name)
    values = json.load(open(path))
    values.update(changes)
    open(path, "w").write(json.dumps(values))


def test_resume_exports_the_best_readable_checkpoint(finished_search, tmp_path, capsys):
    """A damaged checkpoint of the best trial: the search still resumes and
    ends; the export says which checkpoint it could not read."""
    flags, finished = finished_search
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    (checkpoint,) = [os.path.join(d, "checkpoint.weights.h5") for d, _, names
                     in os.walk(out) if "checkpoint.weights.h5" in names]
    open(checkpoint, "r+b").truncate(100)
    proc = _tuner(*flags, "--out", out, "--resume")
    log, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, log + err
    assert re.search(r"^No model exported: trial \d's checkpoint cannot be read \(", log,
                     re.M), log


# Every kind of file a search writes, with the errno a fault there raises.
WRITES = [
    ("search.json", errno.EROFS, "Read-only file system"),
    ("oracle.json", errno.ENOSPC, "No space left on device"),
    ("trial.json", errno.ENOSPC, "No space left on device"),
    ("trials.csv", errno.EIO, "Input/output error"),
    ("checkpoint.weights.h5", errno.ENOSPC, "No space left on device"),
    ("edf.png", errno.ENOSPC, "No space left on device"),
    ("best_model.keras", errno.ENOENT, "No such file or directory"),
    ("best_savedmodel", errno.ENOSPC, "No space left on device"),
]


@pytest.mark.parametrize("name, code, cause", WRITES, ids=[w[0] for w in WRITES])
def test_a_fault_at_any_write_is_one_line_and_resume_finishes(
        tmp_path, capsys, monkeypatch, name, code, cause):
    """The first write of `name` fails (a full disk, a read-only or vanished
    folder, an I/O error): one line naming the file and the cause, exit 1,
    nothing half-written; once the cause is gone, --resume ends the search
    with the trials that had ended kept as they were."""
    out = str(tmp_path / "run")
    flags = ["search", "--max-trials", "2", "--epochs", "1", "--out", out, *TINY,
             "--verbose", "0"]
    failed = []

    def fault(path):
        if os.path.basename(path) == name and not failed:
            failed.append(path)
            raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(files, "fault_injector", fault)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(flags)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    started = name != "search.json"  # its first write starts the search
    assert err.splitlines() == [f"error: {cause}: {failed[0]!r}; " + (
        "completed trials are kept: continue with --resume once the cause is gone."
        if started else "run the search again once the cause is gone.")]
    assert not [p for p in _snapshot(out) if ".tmp." in p]
    kept = {r["trial_id"]: r for r in _rows_if_any(out) if r["status"] == "COMPLETED"}

    monkeypatch.setattr(files, "fault_injector", None)
    assert cli.main([*flags, *(["--resume"] if started else [])]) == 0
    rows = read_trials_csv(os.path.join(out, "trials.csv"))
    assert [r["status"] for r in rows] == ["COMPLETED"] * 2
    assert all(r == kept[r["trial_id"]] for r in rows if r["trial_id"] in kept)
    assert os.path.isfile(os.path.join(out, "best_model.keras"))


def _rows_if_any(out):
    path = os.path.join(out, "trials.csv")
    return read_trials_csv(path) if os.path.exists(path) else []


def test_a_folder_holding_only_a_killed_writers_temporary_is_empty(tmp_path):
    """A search killed while writing its first file leaves its temporary
    folder: starting again in that --out is allowed; a live writer's is not."""
    import socket

    from tuner.config import SearchConfig

    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / f".search.json.tmp.{socket.gethostname()}.{dead.pid}.abcd1234").mkdir()
    folder.check_out(str(out), SearchConfig(), resume=False)
    (out / f".search.json.tmp.{socket.gethostname()}.{os.getpid()}.abcd1234").mkdir()
    with pytest.raises(ValueError, match="is not empty and holds no search"):
        folder.check_out(str(out), SearchConfig(), resume=False)


def test_resume_rebuilds_a_damaged_trials_csv(finished_search, tmp_path, capsys):
    """trials.csv is a view of the oracle's state: cut short, --resume
    writes it again whole from the trials' own files."""
    flags, finished = finished_search
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    path = os.path.join(out, "trials.csv")
    before = read_trials_csv(path)
    text = open(path).read()
    open(path, "w").write(text[: len(text) // 2])
    assert cli.main([*flags, "--out", out, "--resume"]) == 0
    assert read_trials_csv(path) == before
