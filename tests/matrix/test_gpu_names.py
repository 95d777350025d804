"""Every name nvidia-smi / NVML prints for a supported GPU resolves, in `matrix check --gpu` and in the
doctor alike (the names and their sources: gpus.toml [sources] G10)."""

from __future__ import annotations

import pytest

from imagesmith.doctor.rules import match_gpu
from imagesmith.matrix import knowledge

KB = knowledge.load()

# (the string NVML prints, the data's GPU it is)
NVML_NAMES = (
    ("Tesla K80", "Tesla K80"),
    ("Tesla P4", "Tesla P4"),
    ("Tesla P40", "Tesla P40"),
    ("Tesla P100-PCIE-16GB", "Tesla P100"),
    ("Tesla P100-SXM2-16GB", "Tesla P100"),
    ("Tesla V100-SXM2-16GB", "V100"),
    ("Tesla V100-SXM2-32GB", "V100"),
    ("Tesla V100-PCIE-16GB", "V100"),
    ("Tesla T4", "T4"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA A10G", "A10G"),
    ("NVIDIA A30", "A30"),
    ("NVIDIA A40", "A40"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("A100-SXM-80GB", "A100 80GB"),
    ("NVIDIA A100 80GB PCIe", "A100 80GB"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40", "L40"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H800", "H800"),
    ("NVIDIA H20", "H20"),
    ("NVIDIA H200", "H200"),
    ("NVIDIA H200 NVL", "H200"),
    ("NVIDIA GH200 480GB", "GH200"),
    ("NVIDIA GH200 144G HBM3e", "GH200"),
    ("NVIDIA B200", "B200"),
    ("NVIDIA GB200", "GB200"),
    ("NVIDIA B300 SXM6 AC", "B300"),
    ("NVIDIA GB300", "GB300"),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
    ("NVIDIA RTX A6000", "RTX A6000"),
    ("Quadro RTX 8000", "Quadro RTX 8000"),
    ("NVIDIA GeForce RTX 3090", "GeForce RTX 3090"),
    ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
    ("NVIDIA GeForce RTX 5090", "GeForce RTX 5090"),
    ("NVIDIA GeForce RTX 5080", "GeForce RTX 5080"),
    ("NVIDIA GeForce RTX 2080 Ti", "GeForce RTX 2080 Ti"),
    ("GeForce RTX 2080 Ti", "GeForce RTX 2080 Ti"),
    ("GeForce GTX 1080 Ti", "GeForce GTX 1080 Ti"),
    ("TITAN V", "TITAN V"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000 Blackwell Server Edition"),
)


@pytest.mark.parametrize(("printed", "data_name"), NVML_NAMES)
def test_nvml_name_resolves_in_the_matrix_and_the_doctor(printed: str, data_name: str) -> None:
    assert KB.find_gpu(printed).name == data_name
    found = match_gpu(KB, printed)
    assert found is not None and found.name == data_name


def test_a_close_but_wrong_name_is_not_guessed() -> None:
    # Suffix stripping in the doctor must not turn an unknown product into a known one of another family.
    assert match_gpu(KB, "NVIDIA A1000") is None
