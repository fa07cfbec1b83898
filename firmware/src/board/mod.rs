//! One module per target: the serial port and the instruction counter.

#[cfg(all(target_os = "none", feature = "qemu", not(feature = "stm32h7")))]
mod qemu;
#[cfg(all(target_os = "none", feature = "qemu", not(feature = "stm32h7")))]
pub use qemu::*;

#[cfg(all(target_os = "none", feature = "stm32h7"))]
mod stm32h7;
#[cfg(all(target_os = "none", feature = "stm32h7"))]
pub use stm32h7::*;

#[cfg(not(target_os = "none"))]
mod host;
#[cfg(not(target_os = "none"))]
pub use host::*;

/// A byte-wide serial port.
pub trait Serial {
    /// A received byte, if one is waiting.
    fn read(&mut self) -> Option<u8>;
    /// Send a byte (waits while the transmitter is full).
    fn write(&mut self, byte: u8);
    /// Send bytes.
    fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write(b);
        }
    }
}

/// Counts instructions with SysTick under QEMU, core clock cycles on a board.
///
/// Under QEMU's `-icount shift=6` every instruction advances the virtual
/// clock by 64 ns, and SysTick ticks at the MPS2 boards' 25 MHz, so a tick is
/// not an instruction: at boot the counter times a loop of exactly
/// [`CALIBRATION_INSTRUCTIONS`] instructions and [`Counter::since`] converts.
/// SysTick's 24 bits wrap after 16.7M ticks (10.5M instructions under QEMU):
/// its exception counts the wraps, so a time spans up to 2^56 ticks (the
/// handler's few instructions per wrap are counted too).
#[cfg(target_os = "none")]
pub struct Counter {
    syst: cortex_m::peripheral::SYST,
    /// Ticks of the calibration loop (0 on a board: ticks are cycles).
    calibration: u32,
}

/// SysTick wraps since the counter started.
#[cfg(target_os = "none")]
static WRAPS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[cfg(target_os = "none")]
#[cortex_m_rt::exception]
fn SysTick() {
    WRAPS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

#[cfg(target_os = "none")]
use lflow_core::wire::CALIBRATION_INSTRUCTIONS;

/// A point in time: SysTick wraps and the down-counter's value.
#[cfg(target_os = "none")]
#[derive(Clone, Copy, Debug)]
pub struct Instant(u64);

#[cfg(target_os = "none")]
impl Counter {
    /// Free-running 24-bit down counter on the core clock, its wraps counted.
    pub fn new(mut syst: cortex_m::peripheral::SYST) -> Counter {
        syst.set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        let mut counter = Counter { syst, calibration: 0 };
        if cfg!(feature = "qemu") && !cfg!(feature = "stm32h7") {
            let start = counter.now();
            calibration_loop();
            counter.calibration = counter.ticks_since(start).min(u64::from(u32::MAX)) as u32;
        }
        counter
    }

    /// Now, in ticks since the counter started.
    pub fn now(&self) -> Instant {
        use core::sync::atomic::Ordering::Relaxed;
        let _ = &self.syst;
        loop {
            let wraps = WRAPS.load(Relaxed);
            let value = cortex_m::peripheral::SYST::get_current();
            // A wrap between the two loads was counted by the exception: read again.
            if WRAPS.load(Relaxed) == wraps {
                return Instant((u64::from(wraps) << 24) + u64::from(0x00FF_FFFF - (value & 0x00FF_FFFF)));
            }
        }
    }

    /// Raw ticks from `start` to now.
    fn ticks_since(&self, start: Instant) -> u64 {
        self.now().0.saturating_sub(start.0)
    }

    /// Instructions (QEMU) or cycles (a board) from `start` to now, at most `u32::MAX`.
    pub fn since(&self, start: Instant) -> u32 {
        let ticks = self.ticks_since(start);
        let n = match self.calibration {
            0 => ticks,
            cal => ticks.saturating_mul(u64::from(CALIBRATION_INSTRUCTIONS)) / u64::from(cal),
        };
        n.min(u64::from(u32::MAX)) as u32
    }

    /// Ticks of the calibration loop (0 on a board).
    pub fn calibration(&self) -> u32 {
        self.calibration
    }
}

/// Exactly [`CALIBRATION_INSTRUCTIONS`] instructions: `subs` and `bne`, half as many times each.
#[cfg(target_os = "none")]
fn calibration_loop() {
    const { assert!(CALIBRATION_INSTRUCTIONS.is_multiple_of(2)) };
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_INSTRUCTIONS / 2 => _,
            options(nomem, nostack),
        );
    }
}
