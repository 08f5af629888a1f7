"""The faces world linked at the quickstart budget, built once per test session for the faces test modules, and one
torch thread per test (a DCGAN and FER on 64 px images gain little from two threads on busy cores)."""

import pytest
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

import linkviz


@pytest.fixture(scope="session")
def quickstart_linked(tmp_path_factory):
    """60 pairs per emotion (420 unconditional draws, seed 0), ridge link, pairs cached for the session."""
    for package in ("fer", "gan_face_generate", "h5py"):
        pytest.importorskip(package)
    from linkviz.worlds.faces import load_faces_world

    return linkviz.build_linked_model(load_faces_world(device="cpu"), samples_per_class=60, seed=0,
                                      accepted_only=False, cache_dir=tmp_path_factory.getbasetemp() / "faces_pairs")
