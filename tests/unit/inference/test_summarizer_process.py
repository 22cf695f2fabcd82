"""SummarizerProcess: generation in a child process at a lower priority, on a tiny random Llama.

Real child processes, real pipes, real signals; the only seam is the moment a kill is injected.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.inference.process import GeneratorCrashed, SummarizerProcess
from pipeline.inference.summarizer import ModelLoadError, Summarizer, SummarizerConfig
from tests.fixtures_llm import TINY_TEXTS, build_tiny_llm_dir

LINUX = sys.platform.startswith("linux")
CONFIG = SummarizerConfig(precision="fp32", intra_op_threads=1, max_new_tokens=8, stop_sequences=(), batch_size=2)


@pytest.fixture(scope="module")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm_dir(tmp_path_factory.mktemp("tiny-llm-process"))


@pytest.fixture
def served(tiny_llm_dir: Path):  # -> Iterator[SummarizerProcess]
    with SummarizerProcess(tiny_llm_dir, CONFIG) as generator:
        yield generator


def _threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_the_child_answers_exactly_as_the_summarizer_in_process(served: SummarizerProcess, tiny_llm_dir: Path) -> None:
    local = Summarizer.load(tiny_llm_dir, CONFIG)
    assert served.summarize(TINY_TEXTS, time_budget_s=60) == local.summarize(TINY_TEXTS, time_budget_s=60)
    assert served.info == local.info
    assert served.summarize([]) == []
    with pytest.raises(TypeError):
        served.summarize("not a list")


@pytest.mark.skipif(not LINUX, reason="per-thread scheduling policy and /proc are Linux's")
def test_every_thread_of_the_child_runs_at_idle_priority_and_torch_is_never_imported(tiny_llm_dir: Path) -> None:
    import torch  # noqa: F401 - the parent (this test process) has torch loaded; the child must not

    with SummarizerProcess(tiny_llm_dir, replace(CONFIG, intra_op_threads=2)) as generator:
        (pid,) = generator.pids
        assert pid != os.getpid()
        assert all(os.sched_getscheduler(tid) == os.SCHED_IDLE for tid in _threads(pid))
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "onnxruntime" in maps and "/torch/" not in maps


@pytest.mark.skipif(not LINUX, reason="per-thread nice values and /proc are Linux's")
def test_nice_priority_demotes_every_thread_to_nice_19(tiny_llm_dir: Path) -> None:
    with SummarizerProcess(tiny_llm_dir, CONFIG, priority="nice") as generator:
        (pid,) = generator.pids
        assert all(os.getpriority(os.PRIO_PROCESS, tid) == 19 for tid in _threads(pid))
        assert all(os.sched_getscheduler(tid) == os.SCHED_OTHER for tid in _threads(pid))


def test_a_model_that_cannot_load_fails_start_with_the_childs_model_load_error(tmp_path: Path, tiny_llm_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        SummarizerProcess(tmp_path / "nowhere", CONFIG).start()
    with pytest.raises(ModelLoadError, match="has no int4 model"):
        SummarizerProcess(tiny_llm_dir, SummarizerConfig(precision="int4")).start()


def test_a_generation_error_arrives_as_itself_and_the_child_keeps_serving(served: SummarizerProcess) -> None:
    (pid,) = served.pids
    with pytest.raises(TypeError):
        served.summarize([123])  # type: ignore[list-item]  # the tokenizer refuses it, in the child
    assert served.pids == [pid] and served.restarts == 0
    assert len(served.summarize(TINY_TEXTS[:2])) == 2


def test_a_child_killed_between_calls_fails_the_next_call_and_the_one_after_gets_a_fresh_child(
    served: SummarizerProcess,
) -> None:
    expected = served.summarize(TINY_TEXTS)
    (first,) = served.pids
    os.kill(first, signal.SIGKILL)
    with pytest.raises(GeneratorCrashed, match=rf"pid {first}.*SIGKILL"):
        served.summarize(TINY_TEXTS)
    assert served.summarize(TINY_TEXTS) == expected
    (second,) = served.pids
    assert second != first and served.restarts == 1


def test_a_child_killed_while_generating_fails_that_call_and_the_next_call_gets_a_fresh_child(
    served: SummarizerProcess, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipeline.inference.process as process_module

    expected = served.summarize(TINY_TEXTS)
    (first,) = served.pids
    # Stopped, the child cannot answer: the kill below lands after the request was sent and before any reply.
    os.kill(first, signal.SIGSTOP)
    real_wait = process_module.wait

    def kill_then_wait(objects, timeout=None):  # type: ignore[no-untyped-def]
        os.kill(first, signal.SIGKILL)
        return real_wait(objects, timeout)

    monkeypatch.setattr(process_module, "wait", kill_then_wait)
    with pytest.raises(GeneratorCrashed, match=r"during generation \(killed by SIGKILL\)"):
        served.summarize(TINY_TEXTS)
    monkeypatch.setattr(process_module, "wait", real_wait)
    assert served.summarize(TINY_TEXTS) == expected
    assert served.pids != [first] and served.restarts == 1


def test_concurrent_calls_use_one_child_each(tiny_llm_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with SummarizerProcess(tiny_llm_dir, CONFIG, processes=2) as generator:
        assert len(set(generator.pids)) == 2
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda t: generator.summarize([t]), TINY_TEXTS))
        alone = Summarizer.load(tiny_llm_dir, CONFIG)
        assert [r[0] for r in results] == [alone.summarize([t])[0] for t in TINY_TEXTS]


def test_closing_stops_every_child(tiny_llm_dir: Path) -> None:
    generator = SummarizerProcess(tiny_llm_dir, CONFIG, processes=2).start()
    children = [c.process for c in generator._children]
    generator.close()
    assert generator.pids == []
    assert all(p is not None and p.poll() == 0 for p in children)


def test_a_parent_whose_main_script_came_from_stdin_can_start_a_child(tiny_llm_dir: Path) -> None:
    """The child is a fresh `python -m` interpreter: the parent's __main__ (here: stdin, which multiprocessing's
    spawn would try to re-run and fail on) is never re-executed in it."""
    import subprocess

    script = ("import sys\nfrom pathlib import Path\nfrom pipeline.inference.process import SummarizerProcess\n"
              "from pipeline.inference.summarizer import SummarizerConfig\n"
              "with SummarizerProcess(Path(sys.argv[1]), SummarizerConfig(precision='fp32', max_new_tokens=4)) as g:\n"
              "    print(len(g.summarize(['city council voted'])))\n")
    done = subprocess.run([sys.executable, "-", str(tiny_llm_dir)], input=script, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "1", done.stderr[-2000:]


def test_a_child_exits_when_its_parent_is_killed(tiny_llm_dir: Path) -> None:
    """An orphaned generation process must not linger (and hold its model's memory): the parent's death is
    end-of-file on the child's pipe."""
    import subprocess

    import psutil

    script = ("import sys\nfrom pathlib import Path\nfrom pipeline.inference.process import SummarizerProcess\n"
              "from pipeline.inference.summarizer import SummarizerConfig\n"
              "g = SummarizerProcess(Path(sys.argv[1]), SummarizerConfig(precision='fp32')).start()\n"
              "print('pid', g.pids[0], flush=True)\nsys.stdin.read()\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tiny_llm_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    line = parent.stdout.readline()
    while line and not line.startswith("pid "):  # the parent's log lines (unconfigured logging writes to stdout)
        line = parent.stdout.readline()
    assert line, f"the parent exited before starting its child (exit {parent.wait()})"
    child = psutil.Process(int(line.split()[1]))
    parent.kill()
    parent.wait()
    child.wait(timeout=60)  # raises psutil.TimeoutExpired if it lingers
