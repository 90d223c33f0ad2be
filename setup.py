"""The optional compiled hot path of the CDC engine; everything else about the package is in pyproject.toml.

``airflow_connectors.cdc.engine._speedups`` is built from its Cython source when Cython is there (a build
requirement, so pip brings it), else from the C file that an sdist carries. It is optional: without a C compiler
the build warns and the package installs without it, and ``engine/_accel.py`` runs the pure-Python code instead.
"""

from pathlib import Path

from setuptools import Extension, setup

NAME = "airflow_connectors.cdc.engine._speedups"
SOURCE = Path("airflow_connectors/cdc/engine/_speedups.pyx")
GENERATED = SOURCE.with_suffix(".c")


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        cythonize = None
    if cythonize is not None and SOURCE.exists():
        built = cythonize([Extension(NAME, [str(SOURCE)])], quiet=True)
    elif GENERATED.exists():  # an sdist built with Cython carries the C file
        built = [Extension(NAME, [str(GENERATED)])]
    else:
        return []
    for extension in built:
        extension.optional = True  # set here: cythonize() drops it
    return built


setup(ext_modules=extensions())
