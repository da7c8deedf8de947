"""Least-squares GAN losses (Mao et al. 2017), the pix2pix choice for a PatchGAN critic.

Squared error to the labels 1 (real) and 0 (fake) instead of a log-likelihood: gradients do
not vanish for fakes the discriminator already rejects, and training is steadier. Scores are
the discriminator's raw patch map (no sigmoid); every patch counts equally.
"""

from torch import Tensor


def lsgan_d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Discriminator loss ``½(mean((D(real) - 1)²) + mean(D(fake)²))``; 0 when it is perfect.

    ``d_fake`` must come from a detached generator output so this step does not update G.
    """
    return 0.5 * ((d_real - 1.0).square().mean() + d_fake.square().mean())


def lsgan_g_loss(d_fake: Tensor) -> Tensor:
    """Generator loss ``mean((D(fake) - 1)²)``; 0 when every patch is scored real."""
    return (d_fake - 1.0).square().mean()
