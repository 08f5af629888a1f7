"""Exercises of lesson 10: the faces world (a real pretrained DCGAN and the FER emotion classifier)."""

from __future__ import annotations

from linkviz.course.verdict import Exercise

__all__ = ["EXERCISES"]


def _faces():
    from linkviz.worlds.faces import load_faces_world

    return load_faces_world()


def _r_width(world) -> int:
    import torch

    z = torch.randn(1, world.generator.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, r = world.classifier.forward_generated(world.generator.synthesis(world.generator.mapping(z, None)))
    return int(r.shape[1])


def _check_classes(course, answer) -> tuple[bool, str]:
    names = tuple(_faces().class_names)
    return int(answer) == len(names), f"the FER classifier's classes: {', '.join(names)}."


def _check_r(course, answer) -> tuple[bool, str]:
    truth = _r_width(_faces())
    return int(answer) == truth, f"you said {answer}; r of the faces classifier has {truth} values."


EXERCISES = (
    Exercise("10.n_emotions", "How many classes (emotions) does the faces world's classifier tell apart?",
             ("`faces.class_names`.",), _check_classes, lambda course: len(_faces().class_names)),
    Exercise("10.r_width", "How many values does r have in the faces world?",
             ("`logits, r = faces.classifier.forward_generated(images)`.",
              "It is a 128-channel block of 4 x 4 positions, flattened."),
             _check_r, lambda course: _r_width(_faces())),
)
