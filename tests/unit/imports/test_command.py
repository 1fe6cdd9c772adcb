"""`portal import` as an operator runs it: a real process, its exit status, its output on a pipe."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

from portal.i18n import using_locale
from tests.conftest import TEST_SECRET
from tests.unit.imports.conftest import CONFIG, SAMPLES, stores_in

PROJECT = Path(__file__).resolve().parents[3]


def command(database_url: str, *args: str, **options: object) -> subprocess.Popen[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": TEST_SECRET,
        "LANG": "en_GB.UTF-8",
    }
    return subprocess.Popen(  # noqa: S603 - our own command, with arguments the test gives
        [sys.executable, "-m", "portal.cli", "import", *args],
        cwd=PROJECT, env=environment, text=True, encoding="utf-8",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, **{"stderr": subprocess.PIPE, **options},  # type: ignore[call-overload]
    )  # fmt: skip


def run(database_url: str, *args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    process = command(database_url, *args)
    if isinstance(stdin, bytes):  # given as bytes: the test controls the encoding
        process.stdin.buffer.write(stdin)  # type: ignore[union-attr]
        stdin = None
    out, err = process.communicate(stdin)
    return process.returncode, out, err


def test_the_sample_through_its_mapping_then_again_changes_nothing(database_url: str, engine: Engine) -> None:
    mapping = str(CONFIG / "stores.toml")
    status, out, err = run(database_url, "stores", str(SAMPLES / "stores.csv"), "--mapping", mapping)
    assert status == 0, err
    assert out.splitlines()[:2] == [
        "4 rows read.",
        "created 4 · updated 0 · unchanged 0 · merged 0 · rejected 0 · dropped 0",
    ]
    # Not a terminal: plain lines, no bar drawn with carriage returns.
    assert "\r" not in err and err.splitlines()[0].startswith("Checking: 4 rows in ")
    assert len(stores_in(engine)) == 4
    status, out, _ = run(database_url, "stores", str(SAMPLES / "stores.csv"), "--mapping", mapping, "--lang", "fr")
    assert status == 0 and out.splitlines()[1].startswith("créés 0 · mis à jour 0 · inchangés 4")


def test_standard_input_and_gzip(database_url: str, engine: Engine, tmp_path: Path) -> None:
    status, out, err = run(database_url, "stores", "-", stdin="store_code;name\nA1;Shop A\n")
    assert status == 0, err
    packed = tmp_path / "stores.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as stream:
        stream.write('{"store_code": "B2", "name": "Shop B", "kind": "web"}\n')
    status, out, err = run(database_url, "stores", str(packed))
    assert status == 0, err
    assert stores_in(engine) == {"A1": ("Shop A", None, "store"), "B2": ("Shop B", None, "web")}


def test_exit_status_and_what_each_case_writes(database_url: str, engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "stores.csv"
    bad.write_text("store_code,name\nA1,Shop A\nB2,\n", encoding="utf-8")
    status, out, err = run(database_url, "stores", str(bad))
    assert status == 1 and out == ""
    assert err.splitlines()[-2:] == [
        "stores.csv, line 3, column “name”: This field is required.",
        "Nothing was imported: 1 row has errors. Correct it, or import the other rows with --skip-invalid REJECTS.csv.",
    ]
    status, out, _ = run(database_url, "stores", str(bad), "--skip-invalid", str(tmp_path / "rejects.csv"), "--dry-run")
    assert status == 0 and "Dry run: nothing was written" in out and "created 1" in out
    assert stores_in(engine) == {}
    status, out, _ = run(database_url, "stores", str(bad), "--skip-invalid", str(tmp_path / "rejects.csv"))
    assert status == 0 and set(stores_in(engine)) == {"A1"}
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "stores.csv,3,name,This field is required.,B2,"
    )

    latin = tmp_path / "caisse.csv"
    latin.write_bytes("store_code;name\nC3;Épinal\n".encode("latin-1"))
    status, out, err = run(database_url, "stores", str(latin))
    assert status == 2 and "caisse.csv, line 2: the file is not in UTF-8" in err and "iconv" in err
    assert run(database_url, "stores", str(tmp_path / "missing.csv"))[0] == 2
    assert run(database_url, "stores", str(latin), "--mapping", str(tmp_path / "missing.toml"))[0] == 2
    assert run(database_url, "shops", str(latin))[0] == 2  # not a kind: argparse's usage error
    assert set(stores_in(engine)) == {"A1"}


def test_a_kind_not_registered_yet_says_so(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from portal.cli import main
    from portal.imports import registry

    monkeypatch.delitem(registry.KINDS, "stores")
    with using_locale("fr"):  # main() sets the operator's language for the rest of the process: keep it in here
        assert main(["import", "stores", str(SAMPLES / "stores.csv"), "--lang", "en"]) == 2
    assert "Importing stores is not available yet" in capsys.readouterr().err


def test_ctrl_c_stops_between_batches_and_the_summary_says_what_was_committed(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("store_code,name\n" + "".join(f"S{i},Shop {i}\n" for i in range(20000)), encoding="utf-8")
    process = command(database_url, "stores", str(path), "--batch-size", "5")
    while not stores_in(engine) and process.poll() is None:  # the writing pass has begun: interrupt it
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate()
    assert process.returncode == 130, err
    committed = len(stores_in(engine))
    assert 0 < committed < 20000
    assert f"batches were written ({committed:,} rows)" in out


def test_the_fields_of_a_kind_are_listed_for_whoever_writes_a_mapping(capsys) -> None:  # type: ignore[no-untyped-def]
    from portal.cli import main

    with using_locale("fr"):
        assert main(["import", "stores", "--help-fields", "--lang", "en"]) == 0
        assert main(["import", "stores", "--lang", "en"]) == 2  # no file
    out, err = capsys.readouterr()
    assert "  store_code *\tthe retailer's store code" in out and "  city\t" in out
    assert "Name at least one file" in err


def test_ctrl_c_while_checking_writes_nothing(monkeypatch, capsys, database_url: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from portal.cli import main
    from portal.imports import registry
    from portal.imports.stores import StoresKind

    class InterruptedWhileChecking(StoresKind):
        def parse(self, fields, line):  # type: ignore[no-untyped-def]
            if line == 3:
                raise KeyboardInterrupt
            return super().parse(fields, line)

    monkeypatch.setitem(registry.KINDS, "stores", InterruptedWhileChecking)
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    with using_locale("fr"):
        assert main(["import", "stores", str(SAMPLES / "stores.jsonl"), "--lang", "en"]) == 130
    assert "Interrupted while checking the files: nothing was written." in capsys.readouterr().err
    assert stores_in(engine) == {}


def test_on_a_terminal_the_progress_is_a_bar(database_url: str, tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    try:
        process = command(database_url, "stores", str(SAMPLES / "stores.csv"), "--mapping", str(CONFIG / "stores.toml"),
                          stderr=follower)  # fmt: skip
        out, _ = process.communicate()
        os.close(follower)
        drawn = b""
        while chunk := _read_available(leader):
            drawn += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0 and out.startswith("4 rows read.")
    assert b"\r" in drawn and b"Checking" in drawn and b"Writing" in drawn and b"rows/s" in drawn


def _read_available(descriptor: int) -> bytes:
    try:
        return os.read(descriptor, 65536)
    except OSError:  # the terminal's other end is closed and everything was read
        return b""
