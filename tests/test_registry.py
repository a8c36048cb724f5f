"""The method registry: registration rules, lookup errors, wildcards, declared parameters, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from bench.core.errors import BenchError
from methods import registry
from methods.base import Method, param
from tests.helpers import register_for_test


@dataclass
class _Tunable(Method):
    """A test method with declared parameters."""

    kind = "classical"
    strength: float = param(1.0, "multiplier", low=0.5, high=2.0)
    passes: int = param(1, "how many passes", low=1, high=3)
    mode: str = param("fast", "speed/quality", choices=("fast", "slow"))

    def denoise(self, raw):
        return raw.packed


@pytest.fixture
def tunable(monkeypatch):
    return register_for_test(monkeypatch, "_tunable", _Tunable)


def test_noisy_is_registered_and_ready():
    assert "noisy" in registry.list_methods()
    cls = registry.get_method_class("noisy")
    assert cls.kind == "reference"
    assert cls.unavailable_reason() is None


def test_unknown_name_lists_known_methods_and_suggests_close_match():
    with pytest.raises(BenchError) as err:
        registry.get_method_class("nosy")
    message = str(err.value)
    assert "nosy" in message and "noisy" in message and "Did you mean 'noisy'" in message
    assert "\n" not in message


def test_duplicate_name_is_an_error(tunable):
    @dataclass
    class Other(Method):
        """Another."""

        def denoise(self, raw):
            return raw.packed

    with pytest.raises(ValueError, match="registered twice"):
        registry.register_method("_tunable")(Other)


def test_registration_requires_dataclass_method_and_known_kind():
    class NotDataclass(Method):
        """No."""

    with pytest.raises(TypeError, match="dataclass"):
        registry.register_method("_bad1")(NotDataclass)

    @dataclass
    class BadKind(Method):
        """No."""

        kind = "magic"

    with pytest.raises(ValueError, match="kind"):
        registry.register_method("_bad2")(BadKind)
    assert "_bad1" not in registry._REGISTRY and "_bad2" not in registry._REGISTRY


def test_wildcards_and_comma_lists(tunable):
    assert registry.list_methods("_tun*") == ["_tunable"]
    assert registry.resolve_method_names("noisy,_tun*,noisy") == ["noisy", "_tunable"]
    with pytest.raises(BenchError, match="no method matches"):
        registry.resolve_method_names("zzz*")
    with pytest.raises(BenchError, match="no methods given"):
        registry.resolve_method_names(" , ")


def test_declared_parameters_are_visible(tunable):
    specs = {s.name: s for s in registry.get_method_class(tunable).params()}
    assert specs["strength"].type is float and specs["strength"].default == 1.0
    assert (specs["strength"].low, specs["strength"].high) == (0.5, 2.0)
    assert specs["mode"].choices == ("fast", "slow")
    assert specs["passes"].doc == "how many passes"


def test_create_method_checks_values(tunable):
    method = registry.create_method(tunable, {"strength": 2, "mode": "slow"})
    assert method.strength == 2.0 and isinstance(method.strength, float) and method.mode == "slow"
    assert method.param_values() == {"strength": 2.0, "passes": 1, "mode": "slow"}
    with pytest.raises(BenchError, match="no parameter 'strenght'"):
        registry.create_method(tunable, {"strenght": 1.0})
    with pytest.raises(BenchError, match="must be int"):
        registry.create_method(tunable, {"passes": 1.5})
    with pytest.raises(BenchError, match="must be int"):
        registry.create_method(tunable, {"passes": True})
    with pytest.raises(BenchError, match="one of"):
        registry.create_method(tunable, {"mode": "medium"})


def test_listing_imports_no_heavy_packages():
    code = ("import sys; from methods.registry import list_methods, get_method_class\n"
            "for n in list_methods(): get_method_class(n).unavailable_reason(); get_method_class(n).params()\n"
            "heavy = [m for m in ('torch', 'bm3d', 'cv2') if m in sys.modules]\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_declared_requirement_that_is_missing_makes_a_method_unavailable():
    @dataclass
    class NeedsMissing(Method):
        """Needs a package that does not exist."""

        requires = {"surely_not_a_module_xyz": "surely-not-a-package"}

    reason = NeedsMissing.unavailable_reason()
    assert reason == "the surely-not-a-package package is not installed (pip install surely-not-a-package)"
    assert registry.get_method_class("bm3d").unavailable_reason() is None
