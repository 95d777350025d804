"""Does this image run on this node? The matrix's rules, fed with the image's labels and the node's GFD facts.

The same rules as `imagesmith matrix check` and the doctor (``imagesmith.matrix.rules``), the same reason codes
(``imagesmith.matrix.codes``): the GPU against the driver, the image's CUDA runtime against the driver, the
image's kernels (``io.imagesmith.sm``) against the GPU, and the image's declared minimum driver.
"""

from __future__ import annotations

from imagesmith.contract.labels import ImageLabels
from imagesmith.contract.sm import ptx_of, sass_of
from imagesmith.errors import UnknownName
from imagesmith.fleet.gfd import NodeFacts
from imagesmith.matrix import rules
from imagesmith.matrix.codes import Code
from imagesmith.matrix.knowledge import Knowledge
from imagesmith.matrix.model import Gpu
from imagesmith.matrix.rules import Reason, Verdict
from imagesmith.matrix.versions import Capability, NvVersion

UNKNOWN = "unknown"  # the verdict when the image's labels could not be read


def _caps(tokens: tuple[str, ...]) -> tuple[Capability, ...]:
    return Capability.parse_all(tokens)[0]  # a stray token promises nothing: judged without it


def gpu_of(kb: Knowledge, node: NodeFacts) -> Gpu | None:
    """The matrix's GPU for the node: by GFD product name (dashes for spaces), else by compute capability."""
    if node.gpu_product:
        gpu = kb.gpu_or_none(node.gpu_product)
        if gpu is not None:
            return gpu
        tokens = node.gpu_product.replace("-", " ").split()
        for n in range(len(tokens) - 1, 0, -1):  # 'NVIDIA-L4-SOMETHING' -> L4
            gpu = kb.gpu_or_none(" ".join(tokens[:n]))
            if gpu is not None:
                return gpu
    if node.capability is not None:
        try:
            return kb.find_gpu(str(node.capability))
        except UnknownName:  # a capability the matrix has no architecture for: judged without a GPU
            return None
    return None


def image_on_node(kb: Knowledge, promised: ImageLabels, node: NodeFacts) -> Verdict:
    cuda = NvVersion.leading(promised.cuda)
    if cuda is None:
        return Verdict.of()  # no CUDA in the image: nothing of the node's GPU stack is in its way
    if not node.has_gpu:
        return Verdict.of(
            Reason(
                code=Code.NO_GPU_VISIBLE,
                # A pod that requests nvidia.com/gpu never lands here (the scan follows the scheduler): one that
                # does not runs its CUDA image on the CPU only, which is worth saying and no breakage.
                severity="caveat",
                message=f"CUDA {cuda.truncate(2)} image on node {node.name}, which has no NVIDIA GPU: CPU only",
            )
        )
    if node.driver is None:
        return Verdict.of(
            Reason(
                code=Code.UNKNOWN_VERSION,
                severity="caveat",
                message=(
                    f"node {node.name} carries no GPU Feature Discovery driver label "
                    "(nvidia.com/cuda.driver-version.full): run GFD (or the GPU operator) to judge it"
                ),
            )
        )
    gpu = gpu_of(kb, node)
    sass, ptx = _caps(sass_of(promised.sm)), _caps(ptx_of(promised.sm))
    if gpu is not None and (sass or ptx):
        # The whole answer, as `matrix check` gives it: GPU vs driver, runtime vs driver, kernels vs GPU.
        verdict = rules.evaluate(kb, cuda=cuda, sass=sass, ptx=ptx, driver=node.driver, gpu=gpu)
    else:
        # An image that lists no kernels, or a GPU the matrix does not know: judged on what can be judged.
        verdict = rules.runtime_on_driver(kb, cuda=cuda, driver=node.driver, gpu=gpu)
        if gpu is not None:
            verdict = rules.gpu_on_driver(kb, gpu=gpu, driver=node.driver) + verdict
        else:
            verdict = verdict + Verdict.of(
                Reason(
                    code=Code.UNKNOWN_VERSION,
                    severity="caveat",
                    message=f"node {node.name}: GPU {node.gpu_product or '?'} is not in the matrix; kernels not judged",
                )
            )
    min_driver = NvVersion.leading(promised.min_driver)
    if min_driver is not None and node.driver < min_driver and Code.DRIVER_TOO_OLD not in verdict.codes():
        verdict = verdict + Verdict.of(
            Reason(
                code=Code.DRIVER_TOO_OLD,
                severity="fail",
                message=f"the image declares a minimum driver {min_driver}; node {node.name} runs {node.driver}",
            )
        )
    return verdict


def unreadable(ref: str, why: str) -> Verdict:
    return Verdict(
        verdict=UNKNOWN,
        reasons=(Reason(code=Code.IMAGE_UNREADABLE, severity="caveat", message=f"{ref}: {why}"),),
    )
