# SPDX-License-Identifier: Apache-2.0
"""Packages of autokernel-tvm (metadata is in pyproject.toml).

The shipped rule library lives in the repository's top-level ``schedules/`` and is installed as
the package data ``autokernel_tvm.schedules`` (read through ``importlib.resources``), so a wheel
install has it; pyproject.toml alone cannot map a folder outside the package into it.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["autokernel_tvm*"]), "autokernel_tvm.schedules"],
    package_dir={"autokernel_tvm.schedules": "schedules"},
    package_data={"autokernel_tvm.schedules": ["*/*.json"]},
)
