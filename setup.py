"""Build the Cython kernels in fastconv/_ext with -O3 and, where the compiler accepts it, OpenMP.

`FASTCONV_ONLY=name` builds just fastconv/_ext/name.pyx (handy while several people work at once).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compiler_accepts(flag):
    """Compile a tiny OpenMP program with `flag`, so a compiler without OpenMP still builds."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n"
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "t.c")
        with open(c, "w") as f:
            f.write(src)
        r = subprocess.run(
            cc.split() + [flag, c, "-o", os.path.join(d, "t")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return r.returncode == 0


openmp = sys.platform != "win32" and _compiler_accepts("-fopenmp")
if os.environ.get("FASTCONV_NO_OPENMP"):
    openmp = False
compile_args = ["-O3", "-fno-strict-aliasing"] + (["-fopenmp"] if openmp else [])
link_args = ["-fopenmp"] if openmp else []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("FASTCONV_OPENMP", int(openmp))]

only = os.environ.get("FASTCONV_ONLY")
sources = sorted(glob.glob(os.path.join("fastconv", "_ext", "*.pyx")))
if only:
    sources = [s for s in sources if os.path.basename(s)[:-4] in only.split(",")]

extensions = [
    Extension(
        "fastconv._ext." + os.path.basename(src)[:-4],
        [src],
        include_dirs=[np.get_include(), os.path.join("fastconv", "_ext")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=macros,
    )
    for src in sources
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        compile_time_env={"OPENMP": openmp},
    ),
)
