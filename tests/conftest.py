import pytest

_DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "client", "admin_client"}


def pytest_collection_modifyitems(items):
    # Every test that touches the database also runs on PostgreSQL (scripts/test.sh: -m db).
    for item in items:
        if item.get_closest_marker("django_db") or _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _media_in_tmp(request, tmp_path):
    if "settings" in getattr(request, "fixturenames", ()) or request.node.get_closest_marker("db"):
        settings = request.getfixturevalue("settings")
        settings.MEDIA_ROOT = tmp_path / "media"


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(db):
    from accounts.services import create_user  # imported late: pure-core suites run with -p no:django

    def make(role: str, username: str | None = None, language: str = "en"):
        return create_user(
            username=username or f"test_{role}", role=role, password=PASSWORD, language=language
        )

    return make


@pytest.fixture
def login(client, make_user):
    def as_role(role: str):
        user = make_user(role)
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return user

    return as_role
