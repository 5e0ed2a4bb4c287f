"""torch modules whose classes are defined without importing torch.

`METHODS`, every method's config and so `train run --help` (which lists every method's options) must not import
torch (~3 s): a mistyped path is reported before torch loads, and help is instant. A method class and its heads
derive from `LazyModule`: a plain class when the module is imported, a `torch.nn.Module` when instantiated.
Written by hand because torch offers no lazily-imported base class.
"""

from __future__ import annotations

import functools


class LazyModule:
    """`Cls(...)` makes an instance of `torch_class(Cls)`: Cls with `torch.nn.Module` added as its last base, so
    the instance has parameters, buffers, a state_dict and works under DistributedDataParallel. `__init__` must
    call `super().__init__()` first, as for any nn.Module."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls if cls.__dict__.get("_torch_module") else torch_class(cls))


@functools.cache
def torch_class(cls: type) -> type:
    """`cls` with torch.nn.Module as its last base (one class per `cls`; same name, module and docstring)."""
    from torch import nn

    namespace = {"_torch_module": True, "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls, nn.Module), namespace)
