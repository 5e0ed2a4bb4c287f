"""The seed papers' claims the findings table tests, and the effect each paper reports for it.

`CLAIMS`: key -> (claim, source, kind of verdict rule; see analysis/findings.py). `PAPER_EFFECTS`: key -> what the
paper reports, as text, and the size of that effect in accuracy (fraction) where the paper states a number — for
zero-shot classification and, where given, for retrieval. Where the paper gives no number (an effect read only off
a figure) or claims equality, the effect a row must resolve is the equivalence margin `MARGIN`.

Numbers checked against the sources named in the text: DataComp (Gadre et al., NeurIPS 2023) Table 3, and the
CLIP-benchmark tables of the Sense-GVT/DeCLIP README (YFCC-15M, 32 epochs, ImageNet zero-shot top-1).
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN = 0.02  # two accuracy points: the equivalence margin of "about as good" claims

CLAIMS = {  # key -> (claim, source, kind of rule)
    "quality": ("Quality beats quantity at equal compute: a filtered subset beats the unfiltered pool at the same "
                "samples seen", "DataComp; Scaling (Down) CLIP", "better"),
    "quality_random": ("A filtered subset beats a random subset of the same size", "DataComp (Fig. 2)", "better"),
    "aug_half": ("CLIP+Aug matches CLIP trained on twice the data", "Scaling (Down) CLIP", "no worse"),
    "augmentation": ("Image augmentation helps: each augmented method beats itself without its augmentation at equal "
                     "samples seen", "Scaling (Down) CLIP (CLIP+Aug); SLIP; DeCLIP recipes", "better"),
    "vit_size": ("Smaller ViTs suit smaller data, larger ViTs larger data (at fixed samples seen)", "Scaling (Down) CLIP",
                 "better"),
    "supervision": ("Supervision (SLIP, FILIP, DeCLIP, DeFILIP) helps ConvNets and ViTs differently",
                    "CLIP-benchmark (Cui et al. 2022)", "differs"),
    "text_depth": ("A shallow text encoder performs about as well as a deep one at lower training cost",
                   "CLIP-benchmark (Cui et al. 2022)", "no worse"),
    "crossover": ("Repetition-aware quality-quantity crossover: a small clean pool wins at low compute, a larger "
                  "noisier pool once the small one is repeated too often", "Goyal et al. 2024 (CVPR)", "crossover"),
}


@dataclass(frozen=True)
class PaperEffect:
    text: str
    zeroshot: float | None = None  # the effect in accuracy (a fraction); None: no number in the paper
    retrieval: float | None = None  # the same for retrieval recall, where the paper reports it

    def target(self, retrieval: bool) -> tuple[float, str]:
        """(the effect a row's interval must be narrower than, what that number is)."""
        if retrieval and self.retrieval is not None:
            return self.retrieval, "the paper's retrieval effect"
        if self.zeroshot is not None:
            return self.zeroshot, "the paper's effect" + (" (zero-shot; it gives no retrieval number)" if retrieval else "")
        return MARGIN, f"the {MARGIN} margin (the paper states no number for it)"


PAPER_EFFECTS = {
    "quality": PaperEffect("DataComp Table 3, small scale (12.8M samples seen): CLIP score (L/14 30%) − no filtering = "
                           "+0.026 ImageNet zero-shot (0.051 vs 0.025), +0.005 retrieval (0.119 vs 0.114)", 0.026, 0.005),
    "quality_random": PaperEffect("DataComp Fig. 2: CLIP-score subsets beat random subsets of the same size at every "
                                  "fraction tried (figure only)"),
    "aug_half": PaperEffect("Scaling (Down) CLIP: 'comparable performance' with half the data (an equality)"),
    "augmentation": PaperEffect("Scaling (Down) CLIP Fig. 1(b): crop & flip, RandAugment and stacked RandAugment each "
                                "improve zero-shot over plain CLIP at 30 epochs (figure only); SLIP and DeCLIP train with "
                                "their augmentation and report no run without it"),
    "vit_size": PaperEffect("Scaling (Down) CLIP Fig. 8: ViT-L/16 is the worst ViT below 100M samples seen and the best at "
                            "3.4B (figure only)"),
    "supervision": PaperEffect("CLIP-benchmark (YFCC-15M, ImageNet zero-shot): ViT − ConvNet difference of the gain over "
                               "CLIP: SLIP +0.102, DeCLIP +0.032, FILIP +0.226 (DeFILIP: ViT only)"),
    "supervision:slip": PaperEffect("CLIP-benchmark: SLIP − CLIP = +0.015 on ViT-B/32 (34.3 vs 32.8 %), −0.087 on "
                                    "ResNet50 (28.5 vs 37.2 %): ViT − ConvNet = +0.102", 0.102),
    "supervision:declip": PaperEffect("CLIP-benchmark: DeCLIP − CLIP = +0.104 on ViT-B/32 (43.2 vs 32.8 %), +0.072 on "
                                      "ResNet50 (44.4 vs 37.2 %): ViT − ConvNet = +0.032", 0.032),
    "supervision:filip": PaperEffect("CLIP-benchmark: FILIP − CLIP = +0.067 on ViT-B/32 (39.5 vs 32.8 %), −0.159 on "
                                     "ResNet50 (21.3 vs 37.2 %): ViT − ConvNet = +0.226", 0.226),
    "supervision:defilip": PaperEffect("CLIP-benchmark: DeFILIP 45.0 % on ViT-B/32; no ResNet50 number"),
    "text_depth": PaperEffect("CLIP-benchmark: a shallower text encoder costs little accuracy (an equality)"),
    "crossover": PaperEffect("Goyal et al.: a crossover in samples seen, not an accuracy difference"),
}


def paper_effect(key: str, detail: str | None = None) -> PaperEffect:
    """The effect of claim `key` (for supervision, of one method: detail="slip")."""
    return PAPER_EFFECTS.get(f"{key}:{detail}") or PAPER_EFFECTS.get(key) or PaperEffect("–")
