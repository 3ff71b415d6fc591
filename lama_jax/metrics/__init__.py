"""Image quality metrics as LaMa's evaluation computes them: FID (`fid`), LPIPS (`lpips`),
SSIM, PSNR and masked L1 (`fidelity`)."""
