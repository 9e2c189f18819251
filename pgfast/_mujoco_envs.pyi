# Stub for the optional compiled module src/mujoco/_mujoco_envs.pyx (built when the build
# environment has MuJoCo): its kernels are reached through pgfast/mujoco.py. Partial stub:
# names not listed here are typed Any.
from typing import Any

HEADER_VERSION: int

def library_version() -> int: ...
def struct_fields(model_address: int,
                  data_address: int) -> tuple[dict[str, Any], dict[str, Any]]: ...
def __getattr__(name: str) -> Any: ...
