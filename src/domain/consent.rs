//! İYS's enumerations, spelled exactly as on the wire (docs/iys-api-notes.md §4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a string enum whose wire spelling is also its `Display`, `FromStr` and serde form.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name { $( #[serde(rename = $wire)] $variant ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(UnknownValue {
                    what: stringify!($name), value: s.chars().take(40).collect() }) }
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} value {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

wire_enum!(
    /// İYS `type`: the channel the consent covers.
    ConsentType { Arama = "ARAMA", Mesaj = "MESAJ", Eposta = "EPOSTA" }
);
wire_enum!(
    /// İYS `status`.
    Status { Onay = "ONAY", Ret = "RET" }
);
wire_enum!(
    /// İYS `recipientType` (BIREYSEL is İYS's default).
    RecipientType { Bireysel = "BIREYSEL", Tacir = "TACIR" }
);
wire_enum!(
    /// Where a movement came from. `HS_*` values are the 13 an HS may send; `IYS_*` are set by İYS
    /// for changes citizens make themselves (seen in pull, push and the reconciliation file).
    Source {
        HsFizikselOrtam = "HS_FIZIKSEL_ORTAM",
        HsIslakImza = "HS_ISLAK_IMZA",
        HsWeb = "HS_WEB",
        HsCagriMerkezi = "HS_CAGRI_MERKEZI",
        HsSosyalMedya = "HS_SOSYAL_MEDYA",
        HsEposta = "HS_EPOSTA",
        HsMesaj = "HS_MESAJ",
        HsMobil = "HS_MOBIL",
        HsEortam = "HS_EORTAM",
        HsEtkinlik = "HS_ETKINLIK",
        Hs2015 = "HS_2015",
        HsAtm = "HS_ATM",
        HsKarar = "HS_KARAR",
        IysKisamesaj = "IYS_KISAMESAJ",
        IysCm = "IYS_CM",
        IysWeb = "IYS_WEB",
        IysWebYeni = "IYS_WEB_YENI",
        IysMobil = "IYS_MOBIL",
        IysEposta = "IYS_EPOSTA",
        IysAhsHatKapatma = "IYS_AHS_HAT_KAPATMA",
        IysFrameEposta = "IYS_FRAME_EPOSTA",
        IysFrameSms = "IYS_FRAME_SMS",
        Iys3338 = "IYS_3338",
        IysKisaLink = "IYS_KISA_LINK",
    }
);
wire_enum!(
    /// The inbound channel of iys-relay that received a movement.
    Channel { Sms = "sms", Voice = "voice", Web = "web", Agent = "agent", Iys = "iys", Import = "import" }
);

impl Source {
    /// True for the sources an HS may send to İYS (and must report).
    pub fn is_hs(self) -> bool {
        self.as_str().starts_with("HS_")
    }
    /// True for movements İYS made on the citizen's behalf: never reported back.
    pub fn is_iys(self) -> bool {
        !self.is_hs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings_round_trip() {
        for t in ConsentType::ALL {
            assert_eq!(t.as_str().parse::<ConsentType>().unwrap(), *t);
            assert_eq!(
                serde_json::to_string(t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!("RET".parse::<Status>().unwrap(), Status::Ret);
        assert!(
            "RED".parse::<Status>().is_err(),
            "RED is a known client bug, not İYS"
        );
        assert_eq!(
            serde_json::from_str::<RecipientType>("\"TACIR\"").unwrap(),
            RecipientType::Tacir
        );
    }

    #[test]
    fn thirteen_hs_sources() {
        let hs: Vec<_> = Source::ALL.iter().filter(|s| s.is_hs()).collect();
        assert_eq!(hs.len(), 13);
        assert!(Source::IysWebYeni.is_iys());
        assert!(!Source::HsKarar.is_iys());
    }
}
