//! Instructions (OpenFlow 1.3 section 7.2.4).

use super::action::Action;
use super::buf::{Put, Reader};
use super::error::{Error, Result};

pub const OFPIT_GOTO_TABLE: u16 = 1;
pub const OFPIT_WRITE_METADATA: u16 = 2;
pub const OFPIT_WRITE_ACTIONS: u16 = 3;
pub const OFPIT_APPLY_ACTIONS: u16 = 4;
pub const OFPIT_CLEAR_ACTIONS: u16 = 5;
pub const OFPIT_METER: u16 = 6;
pub const OFPIT_EXPERIMENTER: u16 = 0xffff;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        metadata: u64,
        mask: u64,
    },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    /// An experimenter instruction: the bytes after the experimenter id.
    Experimenter {
        experimenter: u32,
        data: Vec<u8>,
    },
    /// An unknown instruction type: the bytes after type and length.
    Unknown {
        instruction_type: u16,
        data: Vec<u8>,
    },
}

impl Instruction {
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        match self {
            Instruction::GotoTable(t) => {
                buf.put_u16(OFPIT_GOTO_TABLE);
                buf.put_u16(8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                buf.put_u16(OFPIT_WRITE_METADATA);
                buf.put_u16(24);
                buf.put_zeros(4);
                buf.put_u64(*metadata);
                buf.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                let ty = if matches!(self, Instruction::WriteActions(_)) {
                    OFPIT_WRITE_ACTIONS
                } else {
                    OFPIT_APPLY_ACTIONS
                };
                buf.put_u16(ty);
                buf.put_u16(0);
                buf.put_zeros(4);
                Action::emit_list(a, buf);
                let len = buf.len() - start;
                buf.set_u16(start + 2, super::buf::len16("instruction", len));
            }
            Instruction::ClearActions => {
                buf.put_u16(OFPIT_CLEAR_ACTIONS);
                buf.put_u16(8);
                buf.put_zeros(4);
            }
            Instruction::Meter(m) => {
                buf.put_u16(OFPIT_METER);
                buf.put_u16(8);
                buf.put_u32(*m);
            }
            Instruction::Experimenter { experimenter, data } => {
                buf.put_u16(OFPIT_EXPERIMENTER);
                buf.put_u16(0);
                buf.put_u32(*experimenter);
                buf.extend_from_slice(data);
                let len = buf.len() - start;
                buf.set_u16(start + 2, super::buf::len16("instruction", len));
            }
            Instruction::Unknown { instruction_type, data } => {
                buf.put_u16(*instruction_type);
                buf.put_u16(0);
                buf.extend_from_slice(data);
                let len = buf.len() - start;
                buf.set_u16(start + 2, super::buf::len16("instruction", len));
            }
        }
    }

    pub fn emit_list(list: &[Instruction], buf: &mut Vec<u8>) {
        for i in list {
            i.emit(buf);
        }
    }

    pub fn parse_list(bytes: &[u8]) -> Result<Vec<Instruction>> {
        let mut r = Reader::new(bytes, "instruction");
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::parse(&mut r)?);
        }
        Ok(out)
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Instruction> {
        let head = r.peek(4)?;
        let ty = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        if len < 4 || len > r.remaining() {
            return Err(Error::BadLength { what: "instruction", len });
        }
        let all = r.bytes(len)?;
        let mut b = Reader::new(&all[4..], "instruction");
        let fixed = |want: usize| -> Result<()> {
            if len == want { Ok(()) } else { Err(Error::BadLength { what: "instruction", len }) }
        };
        Ok(match ty {
            OFPIT_GOTO_TABLE => {
                fixed(8)?;
                Instruction::GotoTable(b.u8()?)
            }
            OFPIT_WRITE_METADATA => {
                fixed(24)?;
                b.skip(4)?;
                Instruction::WriteMetadata { metadata: b.u64()?, mask: b.u64()? }
            }
            OFPIT_WRITE_ACTIONS | OFPIT_APPLY_ACTIONS => {
                if len < 8 {
                    return Err(Error::BadLength { what: "instruction", len });
                }
                b.skip(4)?;
                let a = Action::parse_list(b.rest())?;
                if ty == OFPIT_WRITE_ACTIONS { Instruction::WriteActions(a) } else { Instruction::ApplyActions(a) }
            }
            OFPIT_CLEAR_ACTIONS => {
                fixed(8)?;
                Instruction::ClearActions
            }
            OFPIT_METER => {
                fixed(8)?;
                Instruction::Meter(b.u32()?)
            }
            OFPIT_EXPERIMENTER => Instruction::Experimenter { experimenter: b.u32()?, data: b.rest().to_vec() },
            _ => Instruction::Unknown { instruction_type: ty, data: b.rest().to_vec() },
        })
    }
}
