"""Settings: defaults, the database URL derived from data_dir, and CALLCENTER_* variables."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from callcenter.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # The developer's own CALLCENTER_* variables must not leak into these tests.
    for name in ("DATA_DIR", "DATABASE_URL", "RECORDINGS_DIR", "LOG_LEVEL"):
        monkeypatch.delenv(f"CALLCENTER_{name}", raising=False)
    return monkeypatch


def test_defaults() -> None:
    settings = Settings()
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite+aiosqlite:///var/callcenter.db"
    assert settings.recordings_dir == Path("recordings")
    assert settings.log_level == "INFO"


def test_database_url_follows_data_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    # An absolute path gives four slashes: the scheme's three, then the root.
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/data/callcenter.db"


def test_database_url_from_env_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CALLCENTER_DATA_DIR", "/srv/cc")
    clean_env.setenv("CALLCENTER_DATABASE_URL", "postgresql+asyncpg://cc@db/cc")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://cc@db/cc"
    assert settings.data_dir == Path("/srv/cc")


def test_empty_database_url_means_derived(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CALLCENTER_DATABASE_URL", "")
    assert Settings().database_url == "sqlite+aiosqlite:///var/callcenter.db"


def test_other_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CALLCENTER_RECORDINGS_DIR", "/srv/recordings")
    clean_env.setenv("CALLCENTER_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.recordings_dir == Path("/srv/recordings")
    assert settings.log_level == "DEBUG"


def test_conference_alone_policy(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().conference_alone == "end"
    clean_env.setenv("CALLCENTER_CONFERENCE_ALONE", "queue")
    assert Settings().conference_alone == "queue"
    clean_env.setenv("CALLCENTER_CONFERENCE_ALONE", "hold-forever")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_unknown_log_level_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CALLCENTER_LOG_LEVEL", "chatty")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_keyword_arguments() -> None:
    settings = Settings(data_dir=Path("/d"))
    assert settings.database_url == "sqlite+aiosqlite:////d/callcenter.db"
