import sys
from pathlib import Path

# Reference implementations live beside the tests; the package itself is
# imported from the installed wheel (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
