pub mod twilio;
