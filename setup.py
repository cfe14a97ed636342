"""Builds the `pbs2p` extension module with the project's CMake build (target pbs2p_python).

Offline on Debian 12 (python3-setuptools, python3-dev, pybind11-dev and the C++ build dependencies of
scripts/setup), in a virtual environment that sees Debian's packages:
    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation .
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = ROOT / "build-python" / "cmake"
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                     "-DPBS2P_BUILD_PYTHON=ON", "-DPBS2P_BUILD_TESTS=OFF", "-DPBS2P_BUILD_BENCH=OFF",
                     f"-DPython_EXECUTABLE={sys.executable}"]
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "pbs2p_python", "-j", jobs], check=True)
        built = next((build_dir / "python").glob("pbs2p*.so"), None)
        if built is None:
            sys.exit("pbs2p: the CMake build made no Python module (see 'pbs2p: Python module' in its output)")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built, target)


setup(
    ext_modules=[Extension("pbs2p", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": "build-python"}, "egg_info": {"egg_base": "build-python"}},
)
