"""The CLI, run as its own process, exits without the interpreter's teardown: its exit code, its whole
output and its atexit handlers are what an ordinary exit gives."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from click.testing import CliRunner

from t2a_ray.cli import main

# The CLI as its console script runs it (`main()`, arguments from sys.argv), with an atexit handler
# registered before it, which an ordinary exit would run last.
SCRIPT = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: print("atexit ran", file=sys.stderr, flush=True))
    from t2a_ray.cli import main
    sys.argv = ["t2a-ray", *sys.argv[1:]]
    main()
""")


def cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True)


def test_a_command_that_succeeds_exits_0_with_its_whole_output_and_its_atexit_handlers_run():
    done = cli_process("models")
    assert done.returncode == 0, done.stderr
    in_process = CliRunner().invoke(main, ["models"])
    assert done.stdout == in_process.output and done.stdout.count("\n") > 10  # nothing lost unflushed
    assert done.stderr.splitlines()[-1] == "atexit ran"


def test_a_refusal_keeps_its_exit_code_2_and_its_one_line(tmp_path):
    done = cli_process("status", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[-1] == "atexit ran" and len(lines) == 2 and lines[0].startswith("error: RUN_DIR")


def test_a_caller_that_passes_arguments_gets_the_ordinary_system_exit():
    """CliRunner (and any script calling `main([...])`) keeps its process: the exit is a SystemExit."""
    result = CliRunner().invoke(main, ["status", "/nonexistent"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
