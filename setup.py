"""The optional compiled hot path of the CDC engine; everything else about the package is in pyproject.toml.

``airflow_connectors.cdc.engine._speedups`` is built from its Cython source when Cython is there (it is a build
requirement, so pip brings it), else from the C file an sdist carries. It is optional: without a C compiler the
build warns and the package installs without it, and ``engine/_accel.py`` runs the pure-Python code instead.
"""

from pathlib import Path

from setuptools import Extension, setup

NAME = "airflow_connectors.cdc.engine._speedups"
SOURCE = Path("airflow_connectors/cdc/engine/_speedups.pyx")


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:  # an sdist built with Cython carries the C file
        generated = SOURCE.with_suffix(".c")
        return [Extension(NAME, [str(generated)], optional=True)] if generated.exists() else []
    return cythonize([Extension(NAME, [str(SOURCE)], optional=True)], quiet=True)


setup(ext_modules=extensions())
