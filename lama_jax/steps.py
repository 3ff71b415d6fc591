"""Pure training and evaluation steps (jit them with the shardings of `lama_jax.parallel`).

One training step follows the official Lightning loop: first the generator update, then the
discriminator update on a fresh (detached) prediction of the updated generator. Both networks
run in train mode throughout (BatchNorm uses and updates batch statistics), and the
discriminator sees real and fake images in separate calls, as the official code.

Generator loss (official big-lama.yaml / lama-fourier.yaml):
    10 * L1 on known pixels + 10 * mean softplus(-D(fake)) + 100 * feature matching
    + 30 * HRF perceptual (sum over ResNet50-dilated stages of MSE)
Table 3's variants swap the perceptual term: the plain ResNet50, other weights, or the
official VGG19 `PerceptualLoss`, averaged over the batch here. The official trainer summed it
over each GPU's 10 images and averaged the GPUs' gradients, so its weight 0.03 is 0.3 here.
Discriminator loss:
    mean(softplus(-D(real)) + 0.001 * R1 + m softplus(D(fake)) + (1 - m) softplus(-D(fake)))

The Partial Convolutions baseline (`losses.kind` "pconv") trains its generator alone with its
own loss (`lama_jax.losses.pconv`): `pconv_train_step`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from lama_jax.losses import adversarial, pconv, reconstruction
from lama_jax.losses.perceptual import hrf_perceptual, vgg19_perceptual_terms
from lama_jax.metrics.fidelity import masked_l1, psnr, ssim
from lama_jax.models.generator import composite, generator_input
from lama_jax.models.variables import Variables
from lama_jax.parallel import batch_sharding, replicated, state_shardings
from lama_jax.state import Networks, NetState, TrainState, init_train_state

Batch = Dict[str, jax.Array]
Metrics = Dict[str, jax.Array]


def _apply_train(module, net: NetState, params, x: jax.Array, batch_stats=None):
    """Train-mode apply; returns (output, updated batch_stats)."""
    out, mutated = module.apply(
        {"params": params, "batch_stats": net.batch_stats if batch_stats is None else batch_stats},
        x, train=True, mutable=["batch_stats"])
    return out, mutated["batch_stats"]


def _update(tx: optax.GradientTransformation, net: NetState, grads, batch_stats) -> NetState:
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(optax.apply_updates(net.params, updates), batch_stats, opt_state)


def train_step(nets: Networks, losses: ml_collections.ConfigDict, state: TrainState,
               batch: Batch, backbone_variables: Variables) -> Tuple[TrainState, Metrics]:
    """One generator and one discriminator update on `batch` (image [B, H, W, 3] in [0, 1],
    mask [B, H, W, 1] in {0, 1})."""
    image, mask = batch["image"], batch["mask"]
    x = generator_input(image, mask)  # [B, H, W, 4]
    G, D = nets.generator, nets.discriminator
    g, d = state.generator, state.discriminator

    def generator_loss(g_params):
        pred, g_stats = _apply_train(G, g, g_params, x)  # [B, H, W, 3]
        (_, real_feats), d_stats = _apply_train(D, d, d.params, image)
        (fake_logits, fake_feats), d_stats = _apply_train(D, d, d.params, pred, d_stats)
        real_feats = jax.lax.stop_gradient(real_feats)
        terms = {
            "l1": reconstruction.masked_l1(pred, image, mask, losses.l1_weight_known,
                                           losses.l1_weight_missing),
            "adversarial": losses.adversarial_weight * adversarial.generator_loss(fake_logits),
            "feature_matching": losses.feature_matching_weight
            * reconstruction.feature_matching(fake_feats, real_feats),
        }
        backbone = nets.backbone
        if backbone is not None and backbone.term == "hrf_perceptual":
            terms["hrf_perceptual"] = losses.hrf_perceptual_weight * hrf_perceptual(
                backbone.module, backbone_variables, pred, image)
        elif backbone is not None:
            terms["vgg19_perceptual"] = losses.vgg19_perceptual_weight * jnp.mean(jnp.sum(
                vgg19_perceptual_terms(backbone.module, backbone_variables, pred, image, mask),
                axis=1))
        total = sum(terms.values())
        return total, (terms, g_stats, d_stats)

    (g_total, (g_terms, g_stats, d_stats)), g_grads = jax.value_and_grad(
        generator_loss, has_aux=True)(g.params)
    g = _update(nets.generator_tx, g, g_grads, g_stats)
    d = d.replace(batch_stats=d_stats)

    pred, g_stats = _apply_train(G, g, g.params, x)
    g = g.replace(batch_stats=g_stats)
    fake = jax.lax.stop_gradient(pred)

    def discriminator_loss(d_params):
        def real_logit_sum(img):
            (logits, _), stats = _apply_train(D, d, d_params, img)
            return jnp.sum(logits), (logits, stats)

        grad_real, (real_logits, stats) = jax.grad(real_logit_sum, has_aux=True)(image)
        (fake_logits, _), stats = _apply_train(D, d, d_params, fake, stats)
        r1 = adversarial.r1_penalty(grad_real)
        loss = adversarial.discriminator_loss(real_logits, fake_logits, mask, r1, losses.r1_gp_coef)
        return loss, (r1, stats)

    (d_total, (r1, d_stats)), d_grads = jax.value_and_grad(
        discriminator_loss, has_aux=True)(d.params)
    d = _update(nets.discriminator_tx, d, d_grads, d_stats)

    metrics = {f"generator/{k}": v for k, v in g_terms.items()}
    metrics.update({
        "generator/total": g_total, "generator/grad_norm": optax.tree.norm(g_grads),
        "discriminator/total": d_total, "discriminator/r1": r1,
        "discriminator/grad_norm": optax.tree.norm(d_grads),
    })
    metrics["all_finite"] = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    return TrainState(state.step + 1, g, d), metrics


def pconv_train_step(nets: Networks, losses: ml_collections.ConfigDict, state: TrainState,
                     batch: Batch, backbone_variables: Variables) -> Tuple[TrainState, Metrics]:
    """One generator update with the Partial Convolutions loss (no discriminator) on `batch`
    (image [B, H, W, 3] in [0, 1], mask [B, H, W, 1] in {0, 1})."""
    image, mask = batch["image"], batch["mask"]
    g = state.generator

    def loss(g_params):
        pred, g_stats = _apply_train(nets.generator, g, g_params, generator_input(image, mask))
        vgg = nets.backbone.module if nets.backbone else None
        terms = pconv.pconv_loss_terms(losses, vgg, backbone_variables, pred, image, mask)
        return sum(terms.values()), (terms, g_stats)

    (total, (terms, g_stats)), grads = jax.value_and_grad(loss, has_aux=True)(g.params)
    metrics = {f"generator/{k}": v for k, v in terms.items()}
    metrics.update({"generator/total": total, "generator/grad_norm": optax.tree.norm(grads)})
    metrics["all_finite"] = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
    return state.replace(step=state.step + 1,
                         generator=_update(nets.generator_tx, g, grads, g_stats)), metrics


# losses.kind -> its training step
TRAIN_STEPS = {"lama": train_step, "pconv": pconv_train_step}


def eval_step(nets: Networks, state: TrainState, batch: Batch) -> Dict[str, jax.Array]:
    """Per-image validation metrics of the inpainted result (eval-mode BatchNorm) and the
    images for summaries: L1 inside the hole, PSNR, SSIM [B]; inpainted [B, H, W, 3]."""
    image, mask = batch["image"], batch["mask"]
    pred = nets.generator.apply(state.generator.variables, generator_input(image, mask), train=False)
    inpainted = composite(image, mask, pred)
    return {"l1_hole": masked_l1(inpainted, image, mask),
            "psnr": psnr(inpainted, image), "ssim": ssim(inpainted, image),
            "inpainted": inpainted}


@dataclasses.dataclass(frozen=True)
class TrainingProgram:
    """The jitted, sharded pieces of a run on one mesh."""

    abstract_state: TrainState  # ShapeDtypeStructs
    shardings: TrainState  # NamedShardings, same tree
    init: Callable[[jax.Array], TrainState]  # rng -> sharded fresh state
    step: Callable  # (state, global batch, backbone variables) -> (state, metrics); donates state


def compile_training(nets: Networks, losses: ml_collections.ConfigDict, mesh: Mesh,
                     crop_size: int) -> TrainingProgram:
    """Abstract state, shardings and the jitted init and train step for `mesh`."""
    init = functools.partial(init_train_state, nets, crop_size=crop_size)
    abstract = jax.eval_shape(init, jax.random.key(0))
    shardings = state_shardings(mesh, abstract)
    step = jax.jit(functools.partial(TRAIN_STEPS[losses.kind], nets, losses),
                   in_shardings=(shardings, batch_sharding(mesh), replicated(mesh)),
                   out_shardings=(shardings, replicated(mesh)), donate_argnums=0)
    return TrainingProgram(abstract, shardings, jax.jit(init, out_shardings=shardings), step)
