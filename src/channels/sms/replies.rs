//! The free replies to inbound keywords, Turkish first, English second.

use super::config::ReplyLanguage;
use crate::domain::keywords::SmsIntent;

/// What to answer. `brand` is the display name when one brand is concerned; `choices` the short
/// names to offer when a shared code needs the brand named.
pub fn reply(
    intent: SmsIntent,
    lang: ReplyLanguage,
    brand: Option<&str>,
    choices: &[String],
    help_unrecognised: bool,
) -> Option<String> {
    let b = brand.unwrap_or("");
    let example = choices.first().map(String::as_str).unwrap_or("MARKA");
    let list = choices.join(", ");
    let text = match (intent, lang) {
        (SmsIntent::OptOut, ReplyLanguage::Tr) => format!(
            "{b}: Ret talebiniz alındı. {b} size artık ticari SMS göndermeyecek; talebiniz en geç 3 iş günü içinde İYS'ye işlenir."
        ),
        (SmsIntent::OptOut, ReplyLanguage::En) => format!(
            "{b}: Your opt-out is received. {b} will stop commercial SMS; it is registered in IYS within 3 business days."
        ),
        (SmsIntent::OptIn, ReplyLanguage::Tr) => format!(
            "{b}: Onayınız alındı; kampanya SMS'leri alacaksınız. İstemediğinizde RET yazıp bu numaraya ücretsiz gönderin."
        ),
        (SmsIntent::OptIn, ReplyLanguage::En) => {
            format!("{b}: Your consent is received; you will get offers by SMS. Reply RET (free) to stop at any time.")
        }
        (SmsIntent::Help, ReplyLanguage::Tr) => {
            format!("{b} SMS: Ticari SMS almamak için RET, yeniden almak için EVET yazıp bu numaraya ücretsiz gönderin.")
                .trim_start()
                .to_string()
        }
        (SmsIntent::Help, ReplyLanguage::En) => {
            format!("{b} SMS: Reply RET (free) to stop commercial SMS, EVET to receive them again.").trim_start().to_string()
        }
        (SmsIntent::AmbiguousBrand, ReplyLanguage::Tr) => {
            format!("Bu numara birden çok markaya hizmet veriyor ({list}). Lütfen marka adıyla yazın, örn. \"{example} RET\".")
        }
        (SmsIntent::AmbiguousBrand, ReplyLanguage::En) => {
            format!("This number serves several brands ({list}). Please name the brand, e.g. \"{example} RET\".")
        }
        (SmsIntent::Unrecognised, _) if !help_unrecognised => return None,
        (SmsIntent::Unrecognised, ReplyLanguage::Tr) => {
            "Mesajınız bir komut olarak anlaşılamadı. Ticari SMS almamak için RET, yardım için YARDIM yazın.".to_string()
        }
        (SmsIntent::Unrecognised, ReplyLanguage::En) => {
            "Your message was not understood as a command. Reply RET to stop commercial SMS, HELP for help.".to_string()
        }
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_intent_has_both_languages() {
        let choices = vec!["TSA".to_string(), "XYZ".to_string()];
        for intent in [
            SmsIntent::OptOut,
            SmsIntent::OptIn,
            SmsIntent::Help,
            SmsIntent::AmbiguousBrand,
            SmsIntent::Unrecognised,
        ] {
            for lang in [ReplyLanguage::Tr, ReplyLanguage::En] {
                let r = reply(intent, lang, Some("Demo"), &choices, true).unwrap();
                assert!(!r.is_empty());
            }
        }
        assert!(
            reply(
                SmsIntent::OptOut,
                ReplyLanguage::Tr,
                Some("Demo"),
                &[],
                true
            )
            .unwrap()
            .contains("3 iş günü")
        );
        assert!(
            reply(
                SmsIntent::AmbiguousBrand,
                ReplyLanguage::Tr,
                None,
                &choices,
                true
            )
            .unwrap()
            .contains("TSA RET")
        );
        assert_eq!(
            reply(SmsIntent::Unrecognised, ReplyLanguage::Tr, None, &[], false),
            None
        );
    }
}
