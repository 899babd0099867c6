"""Old import paths that keep working: modules and names that moved to another home.

Code written against an earlier layout (`from hsr_keras.networks import build_generator`,
`from tfrecords_builder.manifest import read_manifest`) still runs: the old module name is an
alias of the new module, resolved when first imported, with a `DeprecationWarning` naming
the new path. Each package lists its moves once, in its `__init__.py` (`install`); a package
whose name was a module before lends that module's names lazily (`lazy_names`), so importing
the package stays cheap.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings


class _Alias(importlib.abc.Loader):
    def __init__(self, new):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        """The new module is already executed; the old name only points at it."""


class _MovedModules(importlib.abc.MetaPathFinder):
    def __init__(self, table):
        self.table = table

    def find_spec(self, name, path=None, target=None):
        new = self.table.get(name)
        if new is None:
            return None
        warnings.warn(f"{name} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(name, _Alias(new))


def install(table):
    """Make each old module name of `table` ({old: new}) import the new module."""
    sys.meta_path.append(_MovedModules(dict(table)))


def lazy_names(package, table):
    """A module `__getattr__` for `package` lending the names of `table` ({name: module}) on first use."""

    def __getattr__(name):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
