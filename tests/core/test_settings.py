"""Settings precedence and the production safety checks (DESIGN.md §5)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance.settings import MIN_SECRET_LENGTH, SECRET_FILE, SettingsError, load_settings


def test_precedence_defaults_config_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("port = 9001\nworkers = 3\nmax_wait_s = 10\n", encoding="utf-8")
    environ = {"LABRUNNER_PORT": "9002", "LABRUNNER_WORKERS": "4"}
    settings = load_settings(data_dir=tmp_path, overrides={"workers": 5, "host": None}, environ=environ)
    assert settings.max_wait_s == 10  # config file beats the default
    assert settings.port == 9002  # environment beats the config file
    assert settings.workers == 5  # an override beats the environment
    assert settings.host == "0.0.0.0"  # an override of None means "not given": the default stays
    assert settings.queue_max == 500  # untouched default
    assert settings.environment == "development"
    assert settings.data_dir == tmp_path.resolve()


def test_environment_selects_environment_and_data_dir(tmp_path: Path) -> None:
    environ = {"LABRUNNER_ENV": "staging", "LABRUNNER_DATA_DIR": str(tmp_path / "from-env")}
    settings = load_settings(environ=environ)
    assert settings.environment == "staging"
    assert settings.data_dir == (tmp_path / "from-env").resolve()
    assert settings.db_path.parent == settings.data_dir


@pytest.mark.parametrize(
    ("environ", "overrides", "fragment"),
    [
        ({"LABRUNNER_PORT": "eighty"}, {}, "port"),
        ({"LABRUNNER_DEBUG": "maybe"}, {}, "debug"),
        ({}, {"port": 70000}, "port"),
        ({}, {"workers": -1}, "negative"),
        ({}, {"no_such_setting": 1}, "no_such_setting"),
        ({"LABRUNNER_ENV": "prod"}, {}, "environment"),
        ({"LABRUNNER_SANDBOX_CPUSET": "0;1"}, {}, "sandbox_cpuset"),
        ({}, {"sandbox_cpuset": "1-0"}, "ascending ranges"),
        ({}, {"sandbox_cpuset": "0,"}, "sandbox_cpuset"),
        ({}, {"sandbox_cpuset": "cpu0"}, "sandbox_cpuset"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, environ: dict[str, str], overrides: dict, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(data_dir=tmp_path, overrides=overrides, environ=environ)


@pytest.mark.parametrize("cpuset", ["", "0", "0-1", "0,2-3", "1-1"])
def test_cpu_lists_docker_takes_are_accepted(tmp_path: Path, cpuset: str) -> None:
    settings = load_settings(data_dir=tmp_path, environ={"LABRUNNER_SANDBOX_CPUSET": cpuset})
    assert settings.sandbox_cpuset == cpuset


def test_unknown_config_key_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("prot = 8081\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(data_dir=tmp_path, environ={})


def test_malformed_config_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("port = = 1\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"config\.toml"):
        load_settings(data_dir=tmp_path, environ={})


def test_production_refuses_debug(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="debug"):
        load_settings(environment="production", data_dir=tmp_path, overrides={"debug": True}, environ={})
    with pytest.raises(SettingsError, match="debug"):
        load_settings(environment="production", data_dir=tmp_path, environ={"LABRUNNER_DEBUG": "1"})
    # The same setting is fine outside production.
    assert load_settings(environment="staging", data_dir=tmp_path, overrides={"debug": True}, environ={}).debug


def test_production_refuses_short_secret(tmp_path: Path) -> None:
    short = "s" * (MIN_SECRET_LENGTH - 1)
    with pytest.raises(SettingsError, match="secret"):
        load_settings(environment="production", data_dir=tmp_path, overrides={"secret_key": short}, environ={})
    long = "s" * MIN_SECRET_LENGTH
    settings = load_settings(environment="production", data_dir=tmp_path, overrides={"secret_key": long}, environ={})
    assert settings.secret_key == long


def test_secret_file_created_private_and_reused(tmp_path: Path) -> None:
    first = load_settings(environment="production", data_dir=tmp_path, environ={})
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= MIN_SECRET_LENGTH
    assert path.read_text(encoding="ascii").strip() == first.secret_key
    second = load_settings(environment="production", data_dir=tmp_path, environ={})
    assert second.secret_key == first.secret_key


def test_explicit_secret_writes_no_file(tmp_path: Path) -> None:
    load_settings(data_dir=tmp_path, overrides={"secret_key": "x" * 40}, environ={})
    assert not (tmp_path / SECRET_FILE).exists()


def test_settings_factory_ignores_developer_environment(settings_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABRUNNER_PORT", "1234")
    monkeypatch.setenv("LABRUNNER_ENV", "production")
    settings = settings_factory(workers=1)
    assert settings.port == 8080
    assert settings.environment == "development"
    assert settings.workers == 1


def test_a_config_file_named_by_labrunner_config_chooses_the_data_folder(tmp_path: Path) -> None:
    """The Debian package's /etc/labrunner/config.toml: found without the data folder, so it may name it
    (a relative path is beside the file); the data folder's own config.toml is then not read."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.toml").write_text('data_dir = "../var/lib"\nport = 9003\n', encoding="utf-8")
    (tmp_path / "var" / "lib").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "config.toml").write_text("port = 9004\nworkers = 2\n", encoding="utf-8")
    environ = {"LABRUNNER_CONFIG": str(etc / "config.toml")}
    settings = load_settings(environ=environ)
    assert settings.data_dir == (tmp_path / "var" / "lib").resolve()
    assert settings.port == 9003 and settings.workers == 6
    # Flags and variables still beat it, for the data folder too.
    moved = load_settings(data_dir=tmp_path / "flag", environ=environ | {"LABRUNNER_PORT": "9005"})
    assert moved.data_dir == (tmp_path / "flag").resolve() and moved.port == 9005
    assert load_settings(environ=environ | {"LABRUNNER_DATA_DIR": str(tmp_path / "env")}).data_dir.name == "env"


@pytest.mark.parametrize(
    ("where", "text", "fragment"),
    [
        ("named", None, "names .*missing.toml, which does not exist"),
        ("named", "data_dir = 5\n", "data_dir must be a folder's path"),
        ("data folder", 'data_dir = "/elsewhere"\n', r"data_dir can be set only in a file named by \$LABRUNNER_CONFIG"),
    ],
)
def test_a_config_file_that_cannot_choose_the_data_folder_is_refused(
    tmp_path: Path, where: str, text: str | None, fragment: str
) -> None:
    path = tmp_path / ("missing.toml" if text is None else "config.toml")
    if text is not None:
        path.write_text(text, encoding="utf-8")
    environ = {"LABRUNNER_CONFIG": str(path)} if where == "named" else {}
    with pytest.raises(SettingsError, match=fragment):
        load_settings(data_dir=None if where == "named" else tmp_path, environ=environ)
