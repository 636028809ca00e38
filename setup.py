"""Build: generate the gRPC stubs from proto/ and compile the Cython kernels in native/.

The card's top-level folders become the ``saoy.*`` import namespace through ``package_dir``,
so nothing generic such as ``core`` lands in site-packages.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import Command, Extension, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

ROOT = Path(__file__).parent.resolve()
PROTO_ROOT = ROOT / "proto"

PACKAGE_DIR = {
    "saoy.core": "core",
    "saoy.server": "server",
    "saoy.native": "native",
    "saoy.clients": "clients",
    "saoy.v1": "proto/saoy/v1",
}


def _packages() -> list[str]:
    found = []
    for package, folder in PACKAGE_DIR.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            found.append(".".join([package, *rel.parts]) if rel.parts else package)
    return found


def generate_stubs() -> None:
    """Compile proto/saoy/v1/*.proto into *_pb2.py, *_pb2.pyi and *_pb2_grpc.py beside them."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={PROTO_ROOT}",
        f"--pyi_out={PROTO_ROOT}",
        f"--grpc_python_out={PROTO_ROOT}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + " ".join(sources))


class GenerateStubs(Command):
    description = "generate gRPC stubs from proto/"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        generate_stubs()


class BuildPy(build_py):
    def run(self) -> None:
        generate_stubs()
        super().run()


class Develop(develop):
    def run(self) -> None:
        generate_stubs()
        super().run()


def _extensions() -> list[Extension]:
    import numpy
    from Cython.Build import cythonize

    extensions = [
        Extension(
            f"saoy.native.{pyx.stem}",
            [str(pyx.relative_to(ROOT))],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3", "-fopenmp"],
            extra_link_args=["-fopenmp"],
        )
        for pyx in sorted((ROOT / "native").glob("*.pyx"))
    ]
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(
    package_dir=PACKAGE_DIR,
    packages=_packages(),
    package_data={
        "saoy.v1": ["*.proto", "*.pyi"],
        "saoy.server": ["templates/*.html", "static/*.js", "static/*.css"],
    },
    ext_modules=_extensions(),
    cmdclass={"build_py": BuildPy, "develop": Develop, "generate_stubs": GenerateStubs},
)
