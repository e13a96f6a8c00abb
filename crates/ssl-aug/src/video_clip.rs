//! Two clips of a video at random temporal offsets, each augmented consistently over its frames.

use tch::Tensor;

use crate::rng::uniform_int;
use crate::{Aug, AugError, AugRng, Result};

/// Settings of [`VideoClips`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct VideoClipsConfig {
    /// Frames per clip (CVRL, Qian et al. 2021: 16).
    pub frames: i64,
    /// Step between the frames of a clip, in source frames (CVRL: 2).
    pub stride: i64,
}

impl Default for VideoClipsConfig {
    /// CVRL's clips (Qian et al., "Spatiotemporal Contrastive Video Representation Learning",
    /// CVPR 2021, Sec. 4): 16 frames with a temporal stride of 2.
    fn default() -> Self {
        Self { frames: 16, stride: 2 }
    }
}

impl VideoClipsConfig {
    /// Validates the config and builds the sampler.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] when `frames` or `stride` is below 1.
    pub fn build(self) -> Result<VideoClips> {
        for (field, v) in [("frames", self.frames), ("stride", self.stride)] {
            if v < 1 {
                return Err(AugError::InvalidConfig {
                    op: "video_clips",
                    field,
                    value: v.to_string(),
                    reason: "must be ≥ 1",
                });
            }
        }
        Ok(VideoClips { cfg: self })
    }
}

/// Cuts clips of `frames` frames, `stride` apart, from videos `[N, T, C, H, W]` at offsets drawn
/// uniformly per video and per clip, and augments each clip with one draw of a 2-D pipeline
/// applied to all its frames (the spatial augmentation is consistent within a clip, as CVRL's
/// "temporally consistent spatial augmentation").
#[derive(Debug, Clone, Copy)]
pub struct VideoClips {
    cfg: VideoClipsConfig,
}

impl VideoClips {
    /// The span of source frames one clip covers.
    fn span(&self) -> i64 {
        (self.cfg.frames - 1) * self.cfg.stride + 1
    }

    /// The start frame of each video's clip: `[N]`, uniform over the offsets that fit.
    ///
    /// # Panics
    /// When the videos are shorter than a clip's span.
    pub fn sample_offsets(&self, n: i64, t: i64, rng: &mut AugRng) -> Vec<i64> {
        let span = self.span();
        assert!(t >= span, "VideoClips: {t} frames are fewer than a clip's span of {span}");
        (0..n).map(|_| uniform_int(rng, t - span + 1)).collect()
    }

    /// The clips starting at `offsets`: `[N, frames, C, H, W]`.
    pub fn cut(&self, x: &Tensor, offsets: &[i64]) -> Tensor {
        let [n, t, c, h, w] = x.size()[..] else {
            panic!("VideoClips: x {:?} must be [N, T, C, H, W]", x.size())
        };
        let idx: Vec<i64> = offsets
            .iter()
            .enumerate()
            .flat_map(|(i, &o)| {
                (0..self.cfg.frames).map(move |f| i as i64 * t + o + f * self.cfg.stride)
            })
            .collect();
        let idx = Tensor::from_slice(&idx).to_device(x.device()); // [N·frames]
        x.reshape([n * t, c, h, w]).index_select(0, &idx).view([n, self.cfg.frames, c, h, w])
    }

    /// One clip per video, with `views` drawn once per clip and applied to all its frames.
    ///
    /// # Shapes
    /// `x`: `[N, T, C, H, W]` → `[N, frames, C, h, w]` (h, w from the pipeline).
    pub fn clip(&self, x: &Tensor, views: &dyn Aug, rng: &mut AugRng) -> Tensor {
        let size = x.size();
        assert!(size.len() == 5, "VideoClips: x {size:?} must be [N, T, C, H, W]");
        let offsets = self.sample_offsets(size[0], size[1], rng);
        let clip = self.cut(x, &offsets); // [N, frames, C, H, W]
        let frame_size = [size[0], size[2], size[3], size[4]];
        let (params, _) = views.sample_erased(&frame_size, rng);
        let n = size[0] as usize;
        let frames: Vec<Tensor> = (0..self.cfg.frames)
            .map(|f| views.apply_erased(&clip.select(1, f), &params, 0, n))
            .collect();
        Tensor::stack(&frames, 1)
    }

    /// Two clips per video (independent offsets and augmentations): the positive pair.
    pub fn pair(&self, x: &Tensor, views: &dyn Aug, rng: &mut AugRng) -> (Tensor, Tensor) {
        let first = self.clip(x, views, rng);
        (first, self.clip(x, views, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{aug_rng, HorizontalFlipConfig, RandomResizedCropConfig, ViewConfig};
    use tch::{Device, Kind};

    /// Videos whose frame f of video i is filled with the value 100·i + f.
    fn numbered(n: i64, t: i64) -> Tensor {
        let v = Tensor::arange(n, (Kind::Float, Device::Cpu)).view([n, 1]) * 100.0
            + Tensor::arange(t, (Kind::Float, Device::Cpu)).view([1, t]);
        v.view([n, t, 1, 1, 1]).expand([n, t, 1, 4, 4], false).contiguous()
    }

    #[test]
    fn clips_take_strided_frames_from_offsets_that_fit() {
        let op = VideoClipsConfig { frames: 3, stride: 2 }.build().unwrap();
        let x = numbered(2, 10);
        let clip = op.cut(&x, &[0, 5]);
        let firsts = Vec::<f32>::try_from(clip.select(3, 0).select(3, 0).flatten(0, -1)).unwrap();
        assert_eq!(firsts, vec![0.0, 2.0, 4.0, 105.0, 107.0, 109.0]);
        let offsets = op.sample_offsets(5000, 10, &mut aug_rng(0, &[]));
        assert!(offsets.iter().all(|&o| (0..=5).contains(&o)));
        for o in 0..=5 {
            let k = offsets.iter().filter(|&&v| v == o).count();
            assert!((700..970).contains(&k), "offset {o}: {k} of 5000"); // 833 ± 26
        }
    }

    #[test]
    fn one_draw_of_the_spatial_views_covers_every_frame_of_a_clip() {
        // A video whose frames are all the same image: every frame of a clip must come out
        // identical, and equal to the 2-D views applied once with the same draws.
        let op = VideoClipsConfig { frames: 4, stride: 1 }.build().unwrap();
        let image = Tensor::rand([3, 1, 3, 12, 12], (Kind::Float, Device::Cpu));
        let x = image.expand([3, 6, 3, 12, 12], false).contiguous();
        let views = ViewConfig {
            crop: RandomResizedCropConfig { size: [8, 8], ..Default::default() },
            flip: HorizontalFlipConfig { p: 0.5 },
            ..ViewConfig::simclr_cifar(8)
        }
        .build()
        .unwrap();
        let clip = op.clip(&x, &views, &mut aug_rng(9, &[]));
        assert_eq!(clip.size(), [3, 4, 3, 8, 8]);
        for f in 1..4 {
            assert!(clip.select(1, f).equal(&clip.select(1, 0)), "frame {f}");
        }
        let (a, b) = op.pair(&x, &views, &mut aug_rng(9, &[]));
        assert!(a.equal(&clip) && !b.equal(&a));
    }

    #[test]
    fn short_videos_and_bad_settings_are_caught() {
        let err = VideoClipsConfig { frames: 0, stride: 1 }.build().unwrap_err().to_string();
        assert!(err.contains("video_clips.frames"), "{err}");
        let op = VideoClipsConfig { frames: 4, stride: 3 }.build().unwrap();
        let caught = std::panic::catch_unwind(|| op.sample_offsets(1, 9, &mut aug_rng(0, &[])));
        assert!(caught.is_err()); // span 10 > 9 frames
    }
}
