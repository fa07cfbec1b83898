//! An STM32H743-class board: USART3 (PD8 TX, PD9 RX, AF7, the ST-LINK virtual
//! COM port of the Nucleo-H743ZI) at 115200 baud on the 64 MHz HSI clock.

use super::Serial;

const RCC: usize = 0x5802_4400;
const RCC_AHB4ENR: usize = RCC + 0xE0;
const RCC_APB1LENR: usize = RCC + 0xE8;
const GPIOD: usize = 0x5802_0C00;
const USART3: usize = 0x4000_4800;
const CR1: usize = 0x00;
const BRR: usize = 0x0C;
const ISR: usize = 0x1C;
const RDR: usize = 0x24;
const TDR: usize = 0x28;

fn write(addr: usize, v: u32) {
    // SAFETY: fixed, aligned MMIO registers of the STM32H743 memory map.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn read(addr: usize) -> u32 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// USART3.
pub struct Uart(());

impl Serial for Uart {
    fn read(&mut self) -> Option<u8> {
        (read(USART3 + ISR) & (1 << 5) != 0).then(|| read(USART3 + RDR) as u8)
    }

    fn write(&mut self, byte: u8) {
        while read(USART3 + ISR) & (1 << 7) == 0 {}
        write(USART3 + TDR, u32::from(byte));
    }
}

/// Clocks, pins and USART3.
pub fn serial() -> Uart {
    write(RCC_AHB4ENR, read(RCC_AHB4ENR) | (1 << 3)); // GPIOD
    write(RCC_APB1LENR, read(RCC_APB1LENR) | (1 << 18)); // USART3
                                                         // PD8, PD9: alternate function 7.
    let moder = read(GPIOD) & !(0b1111 << 16);
    write(GPIOD, moder | (0b1010 << 16));
    let afrh = read(GPIOD + 0x24) & !0xFF;
    write(GPIOD + 0x24, afrh | 0x77);
    write(USART3 + BRR, 64_000_000 / 115_200);
    write(USART3 + CR1, (1 << 0) | (1 << 2) | (1 << 3)); // UE, RE, TE
    Uart(())
}

/// A board has nowhere to exit to: wait for a reset (the panic handler's way out).
#[cfg_attr(feature = "panic-never", allow(dead_code))]
pub fn exit(_success: bool) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
