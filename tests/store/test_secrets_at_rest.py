"""Secrets and data at rest (contract v3): the launch-state keys, the SQLite store's
permissions, the start-up refusals of an unauthenticated unix socket, and /metrics."""

from __future__ import annotations

import stat
import time

import pytest

from cds_service.config import ConfigError, Settings
from cds_service.secret_keys import DEFAULT_KEY_FILE, launch_keys
from cds_service.smart import launch as smart_launch

from ..servers import run_gunicorn

STATE = smart_launch.LaunchState("http://127.0.0.1:9/fhir", "s", "v" * 50, "http://x/token")
OLD, NEW = "o" * 40, "n" * 40


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_store_and_its_folder_are_owner_only(make_app, tmp_path):
    make_app(feedback_db=tmp_path / "data" / "store.sqlite3")
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(tmp_path / "data" / "store.sqlite3") == 0o600


def test_without_a_key_file_a_key_is_made_owner_only_beside_the_store(tmp_path):
    settings = Settings(feedback_db=tmp_path / "data" / "store.sqlite3")
    keys = launch_keys(settings)
    path = tmp_path / "data" / DEFAULT_KEY_FILE
    assert _mode(path) == 0o600 and len(keys) == 1 and len(keys[0]) >= 32
    assert launch_keys(settings) == keys  # made once, then read


def test_keys_rotate_the_first_signs_every_one_verifies(tmp_path):
    old_cookie = smart_launch.StateCookie((OLD,)).dump(STATE)
    rotated = smart_launch.StateCookie((NEW, OLD))
    assert rotated.load(old_cookie) == STATE  # a launch signed before the rotation finishes
    new_cookie = rotated.dump(STATE)
    assert smart_launch.StateCookie((NEW,)).load(new_cookie) == STATE  # signed with NEW
    with pytest.raises(smart_launch.LaunchError):
        smart_launch.StateCookie((OLD,)).load(new_cookie)
    with pytest.raises(smart_launch.LaunchError):
        smart_launch.StateCookie((NEW,)).load(old_cookie)  # OLD removed: no longer valid


@pytest.mark.parametrize(
    "text, message",
    [("", "holds no key"), ("short\n", "at least 32"), (None, "cannot be read")],
)
def test_a_bad_key_file_is_a_clear_start_up_error(tmp_path, text, message):
    path = tmp_path / "keys"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        launch_keys(Settings(secret_key_file=path, feedback_db=tmp_path / "f.sqlite3"))


def test_the_key_file_is_read_and_the_store_holds_no_key(make_app, tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"{NEW}\n{OLD}\n")
    app = make_app(smart_client_id="app", secret_key_file=path)
    assert app.extensions["wm_igm_launch_keys"] == (NEW, OLD)
    store = app.extensions["wm_igm_store"]
    with store._connection() as connection:
        rows = store._execute(connection, "SELECT count(*) FROM shared_secret").fetchone()
    assert rows[0] == 0


def test_an_unauthenticated_unix_socket_is_refused_at_start_up(tmp_path):
    result = run_gunicorn(tmp_path, f"unix:{tmp_path / 'cds.sock'}")
    assert result.returncode != 0
    assert "without authentication" in result.stderr


def test_metrics_methods_come_from_a_fixed_set(client):
    for n in range(30):
        client.open("/healthz", method=f"X{n}{time.monotonic_ns()}")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text
    assert "X1" not in text


def test_metrics_need_loopback_or_the_token(make_app):
    app = make_app(metrics_token="t" * 20)
    client = app.test_client()
    outside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=outside).status_code == 401
    wrong = {"Authorization": "Bearer " + "u" * 20}
    assert client.get("/metrics", environ_base=outside, headers=wrong).status_code == 401
    right = {"Authorization": "Bearer " + "t" * 20}
    assert client.get("/metrics", environ_base=outside, headers=right).status_code == 200
    assert client.get("/metrics").status_code == 200  # loopback
    plain = make_app().test_client()
    assert plain.get("/metrics", environ_base=outside).status_code == 403


def test_the_metrics_folder_is_cleared_of_sample_files_only(tmp_path, monkeypatch):
    from cds_service import gunicorn_conf

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"x")
    (folder / "histogram_9.db").write_bytes(b"x")
    (folder / "notes.txt").write_text("not ours")
    (folder / "other.db").write_bytes(b"x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    gunicorn_conf._prepare_metrics_directory()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "other.db"]
