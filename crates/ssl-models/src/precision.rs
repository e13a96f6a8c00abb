//! The backbone's number format, and `auto`: bf16 activations only where the hardware runs them
//! fast.
//!
//! libtorch runs bf16 convolutions through oneDNN only on CPUs with native bf16 arithmetic
//! (AVX512-BF16 or AMX-BF16). Elsewhere (AVX2-only CPUs, the common case on laptops and many
//! cloud VMs) it falls back to a scalar `slow_conv2d` path that is about 10× slower than f32,
//! so bf16 is a speed-up on some machines and a trap on others. [`Precision::Auto`] chooses per
//! machine with [`Precision::resolve`].

use tch::Device;

/// The number format the backbone computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Precision {
    /// [`Precision::Bf16`] where bf16 is fast (a CUDA device, or a CPU with AVX512-BF16 or
    /// AMX-BF16 that libtorch may use), [`Precision::F32`] elsewhere; see
    /// [`Precision::resolve`].
    #[default]
    Auto,
    /// Everything in the input's kind (f32 for images).
    F32,
    /// Mixed precision as `torch.autocast(dtype=torch.bfloat16)` runs a ResNet: convolutions and
    /// BatchNorm take bf16 activations (BatchNorm accumulates its statistics in f32), weights and
    /// running statistics stay f32 and get f32 gradients, and the pooled features come back f32.
    /// On an AVX512-BF16 CPU the default backbone's training step ran 1.55× faster than f32
    /// channels-last; on an AVX2-only CPU about 10× slower (docs/benchmarks.md). Values differ
    /// from f32 by bf16 rounding (8 bits of mantissa).
    Bf16,
}

/// The CPU facts that decide whether bf16 convolutions are fast.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// The CPU has AVX512-BF16 (`avx512_bf16` in `/proc/cpuinfo`) and the OS saves AVX-512
    /// state.
    pub avx512_bf16: bool,
    /// The CPU has AMX-BF16 (`amx_bf16`).
    pub amx_bf16: bool,
    /// `ONEDNN_MAX_CPU_ISA` (or the older `DNNL_MAX_CPU_ISA`) when set: it caps the instructions
    /// oneDNN may use, so `AVX2` there turns native bf16 off.
    pub onednn_max_isa: Option<String>,
    /// `ATEN_CPU_CAPABILITY` when set (`default`, `avx2`, `avx512`, …): it caps ATen's kernels.
    pub aten_capability: Option<String>,
}

impl CpuFeatures {
    /// Reads this machine: CPUID leaf 7 for the bf16 instructions, and the two environment
    /// variables that cap what libtorch uses.
    pub fn detect() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (avx512_bf16, amx_bf16) = cpuid_bf16();
        Self {
            avx512_bf16,
            amx_bf16,
            onednn_max_isa: env("ONEDNN_MAX_CPU_ISA").or_else(|| env("DNNL_MAX_CPU_ISA")),
            aten_capability: env("ATEN_CPU_CAPABILITY"),
        }
    }

    /// Whether libtorch runs bf16 convolutions natively here, and the reason in words.
    pub fn native_bf16(&self) -> (bool, String) {
        if !(self.avx512_bf16 || self.amx_bf16) {
            return (false, "this CPU has neither AVX512-BF16 nor AMX-BF16".into());
        }
        let has = if self.amx_bf16 { "AMX-BF16" } else { "AVX512-BF16" };
        if let Some(isa) = &self.onednn_max_isa {
            if !onednn_isa_has_bf16(isa) {
                return (
                    false,
                    format!(
                        "this CPU has {has}, but ONEDNN_MAX_CPU_ISA={isa} caps oneDNN below it"
                    ),
                );
            }
        }
        if let Some(cap) = &self.aten_capability {
            if !cap.trim().to_ascii_lowercase().starts_with("avx512") {
                return (false, format!("this CPU has {has}, but ATEN_CPU_CAPABILITY={cap} caps libtorch below AVX-512"));
            }
        }
        (true, format!("this CPU has {has}"))
    }
}

/// AVX512-BF16 (CPUID.(EAX=7, ECX=1):EAX bit 5, usable only when the OS saves AVX-512 state) and
/// AMX-BF16 (CPUID.(EAX=7, ECX=0):EDX bit 22).
#[cfg(target_arch = "x86_64")]
fn cpuid_bf16() -> (bool, bool) {
    use std::arch::x86_64::__cpuid_count;
    if __cpuid_count(0, 0).eax < 7 {
        return (false, false);
    }
    let os_avx512 = std::arch::is_x86_feature_detected!("avx512f");
    let avx512_bf16 = os_avx512 && __cpuid_count(7, 1).eax & (1 << 5) != 0;
    let amx_bf16 = __cpuid_count(7, 0).edx & (1 << 22) != 0;
    (avx512_bf16, amx_bf16)
}

/// Other architectures: libtorch's bf16 convolutions are not assumed fast.
#[cfg(not(target_arch = "x86_64"))]
fn cpuid_bf16() -> (bool, bool) {
    (false, false)
}

/// Whether a oneDNN ISA cap (its documented names, any case) still allows native bf16.
fn onednn_isa_has_bf16(isa: &str) -> bool {
    let isa = isa.trim().to_ascii_uppercase();
    isa == "ALL"
        || isa.contains("BF16")
        || isa.contains("AMX")
        || isa.contains("FP16")
        || isa.starts_with("AVX10")
}

/// What [`Precision::resolve`] chose, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrecisionChoice {
    /// [`Precision::F32`] or [`Precision::Bf16`], never [`Precision::Auto`].
    pub precision: Precision,
    /// One sentence for the log: the rule that applied.
    pub reason: String,
    /// Set when an explicit `bf16` runs where it is slow.
    pub warning: Option<String>,
}

impl Precision {
    /// The format to compute in on `device`, given the CPU's `features`.
    ///
    /// `Auto` becomes bf16 on CUDA and on a CPU with native bf16 ([`CpuFeatures::native_bf16`]),
    /// f32 otherwise. An explicit choice is kept; an explicit bf16 on a CPU without native bf16
    /// comes with a warning, since libtorch's fallback is about 10× slower than f32 there.
    pub fn resolve(self, device: Device, features: &CpuFeatures) -> PrecisionChoice {
        let (native, why) = match device {
            Device::Cuda(_) => (true, "CUDA runs bf16 on tensor cores".to_string()),
            _ => features.native_bf16(),
        };
        let choice =
            |precision, reason: String, warning| PrecisionChoice { precision, reason, warning };
        match self {
            Precision::Auto if native => choice(Precision::Bf16, format!("auto: bf16, since {why}"), None),
            Precision::Auto => choice(
                Precision::F32,
                format!("auto: f32, since {why} (libtorch's bf16 convolutions would take a slow scalar path)"),
                None,
            ),
            Precision::F32 => choice(Precision::F32, "f32, as configured".into(), None),
            Precision::Bf16 if native => choice(Precision::Bf16, format!("bf16, as configured ({why})"), None),
            Precision::Bf16 => choice(
                Precision::Bf16,
                format!("bf16, as configured, although {why}"),
                Some(format!(
                    "bf16 on this CPU is about 10x slower than f32: {why}, so libtorch's bf16 \
                     convolutions take a scalar path; use precision: auto or f32"
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(avx512_bf16: bool, amx_bf16: bool) -> CpuFeatures {
        CpuFeatures { avx512_bf16, amx_bf16, ..CpuFeatures::default() }
    }

    #[test]
    fn auto_is_f32_on_an_avx2_cpu_and_bf16_with_native_bf16_or_cuda() {
        let avx2 = cpu(false, false);
        let r = Precision::Auto.resolve(Device::Cpu, &avx2);
        assert_eq!(r.precision, Precision::F32);
        assert!(r.reason.contains("neither AVX512-BF16 nor AMX-BF16"), "{}", r.reason);
        assert_eq!(
            Precision::Auto.resolve(Device::Cpu, &cpu(true, false)).precision,
            Precision::Bf16
        );
        assert_eq!(
            Precision::Auto.resolve(Device::Cpu, &cpu(false, true)).precision,
            Precision::Bf16
        );
        assert_eq!(Precision::Auto.resolve(Device::Cuda(0), &avx2).precision, Precision::Bf16);
    }

    #[test]
    fn isa_caps_turn_native_bf16_off() {
        let capped = |onednn: Option<&str>, aten: Option<&str>| CpuFeatures {
            onednn_max_isa: onednn.map(str::to_string),
            aten_capability: aten.map(str::to_string),
            ..cpu(true, true)
        };
        let p = |f: &CpuFeatures| Precision::Auto.resolve(Device::Cpu, f).precision;
        assert_eq!(p(&capped(Some("AVX2"), None)), Precision::F32);
        assert_eq!(p(&capped(Some("avx512_core"), None)), Precision::F32);
        assert_eq!(p(&capped(None, Some("avx2"))), Precision::F32);
        assert_eq!(p(&capped(None, Some("default"))), Precision::F32);
        assert_eq!(p(&capped(Some("AVX512_CORE_BF16"), Some("avx512"))), Precision::Bf16);
        assert_eq!(p(&capped(Some("ALL"), None)), Precision::Bf16);
        assert_eq!(p(&capped(Some("AVX512_CORE_AMX"), None)), Precision::Bf16);
        let r = Precision::Auto.resolve(Device::Cpu, &capped(Some("AVX2"), None));
        assert!(r.reason.contains("ONEDNN_MAX_CPU_ISA=AVX2"), "{}", r.reason);
    }

    #[test]
    fn explicit_choices_are_kept_and_slow_bf16_warns() {
        let avx2 = cpu(false, false);
        let f = Precision::F32.resolve(Device::Cpu, &cpu(true, true));
        assert_eq!((f.precision, f.warning), (Precision::F32, None));
        let b = Precision::Bf16.resolve(Device::Cpu, &avx2);
        assert_eq!(b.precision, Precision::Bf16);
        assert!(b.warning.unwrap().contains("10x slower"));
        assert_eq!(Precision::Bf16.resolve(Device::Cpu, &cpu(true, false)).warning, None);
    }
}
