import fc from 'fast-check';

// Fixed seed so CI is reproducible; set NMGRAD_FC_SEED to explore other cases.
fc.configureGlobal({ seed: Number(process.env.NMGRAD_FC_SEED ?? 20221115) });

// Buffers allocated with allocUninit start as NaN here, so a kernel that leaves part of an
// output unwritten (or reads it before writing) fails the tests instead of passing on zeros.
process.env.NMGRAD_POISON_UNINIT = '1';
