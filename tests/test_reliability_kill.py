"""kill -9 at random instants of small searches, each followed by `--resume`.

The kills land wherever the search is: importing TensorFlow, building a
model, training, writing a checkpoint, ending a trial, writing trials.csv,
exporting the best model. After each one, the completed trials are kept as
they were and trials.csv agrees with the trials' own state files; at the
end a plain `--resume` finishes every search, no trial ran twice to
completion, and each trial is in trials.csv once. The instants are drawn
from a seeded generator, so a failure repeats.
"""

import json
import os
import random
import re
import subprocess
import sys

from tuner.trials import read_trials_csv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = 20
TRIALS = 6
# Tiny models on 8x8 digits: a trial takes a second or two, so the kills
# spread over every phase. A trial whose process died twice is recorded as
# failed (tuner.oracle.MAX_ATTEMPTS), so failures must not stop the search.
SEARCH = ["search", "--max-trials", str(TRIALS), "--epochs", "3", "--image-size", "8",
          "--depth", "1-3", "--w0", "8-16", "--wa", "8-16", "--group-width", "4,8",
          "--flops", "none", "--batch-size", "64", "--verbose", "0",
          "--max-failures", "0"]
DIED = "The process running this trial died"
# Keras Tuner rewrites its tuner0.json in place, so a kill can cut it short;
# after this many kills the test cuts it short itself, once.
CUT_TUNER_STATE_AT = 5


def _cut_short(path):
    with open(path, "r+", encoding="utf-8") as f:
        f.truncate(len(f.read()) // 2)


def _start(out, resume):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *SEARCH, "--out", out, *(["--resume"] if resume else [])],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(out):
    path = os.path.join(out, "trials.csv")
    return read_trials_csv(path) if os.path.exists(path) else []


def _trial_states(out):
    """{trial_id: status} from the trials' own `trial.json` files."""
    project = os.path.join(out, "kt_project")
    states = {}
    for name in os.listdir(project) if os.path.isdir(project) else []:
        path = os.path.join(project, name, "trial.json")
        if name.startswith("trial_") and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                states[name[len("trial_"):]] = json.load(f)["status"]
    return states


def _check(out, kept, final=False):
    """The invariants after a kill (and, `final`, after the search ended)."""
    rows = _rows(out)
    ids = [r["trial_id"] for r in rows]
    assert len(ids) == len(set(ids)), ids
    ended = {r["trial_id"]: r for r in rows if r["status"] in ("COMPLETED", "FAILED")}
    for trial_id, row in kept.items():
        # Columns added since (metrics first seen in a later trial) are empty.
        now = ended.get(trial_id) or {}
        assert {k: now.get(k) for k in row} == row, (trial_id, row, now)
        assert all(now[k] in ("", None) for k in set(now) - set(row)), now
    states = _trial_states(out)
    # trials.csv is written after the trial's state: it never runs ahead.
    for trial_id, row in ended.items():
        assert states.get(trial_id) == row["status"], (trial_id, row["status"], states)
    if final:
        assert {t: s for t, s in states.items() if s in ("COMPLETED", "FAILED")} == {
            t: r["status"] for t, r in ended.items()}
        assert len(ended) == TRIALS
        for row in ended.values():
            assert row["status"] == "COMPLETED" or DIED in row["message"], row
    kept.update(ended)


def test_kill_9_at_random_instants_then_resume_finishes(tmp_path):
    rng = random.Random(2026)
    kills, searches, cut = 0, [], False
    while kills < KILLS:
        out = str(tmp_path / f"run{len(searches)}")
        searches.append(out)
        kept, outputs, resume = {}, [], False
        while kills < KILLS:
            proc = _start(out, resume)
            resume = True
            try:
                outputs.append(proc.communicate(timeout=rng.uniform(0.5, 9.0))[0])
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate()[0])
                kills += 1
                if os.path.exists(os.path.join(out, "search.json")):
                    _check(out, kept)
                    state = os.path.join(out, "kt_project", "tuner0.json")
                    if kills >= CUT_TUNER_STATE_AT and not cut and os.path.exists(state):
                        _cut_short(state)
                        cut = True
                else:  # killed before the search wrote anything: start anew
                    resume = False
                continue
            assert proc.returncode == 0, outputs[-1]
            break
        if kills == KILLS:
            if os.path.exists(os.path.join(out, "search.json")):
                proc = _start(out, True)
                outputs.append(proc.communicate(timeout=600)[0])
                assert proc.returncode == 0, outputs[-1]
            else:
                continue
        _check(out, kept, final=True)
        log = "".join(outputs)
        # One line per trial as it ends: a trial that ended twice ran twice.
        ended_lines = re.findall(rf"^trial (\d+)/{TRIALS} \| ", log, re.M)
        assert len(ended_lines) == len(set(ended_lines)), log
        assert os.path.isfile(os.path.join(out, "best_model.keras")) == any(
            r["status"] == "COMPLETED" for r in kept.values())
    assert cut, "tuner0.json was never cut short"
