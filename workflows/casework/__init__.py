"""Cases and what people do with them: intake, steps, returns and transfers, copies, extensions, messages from
outside, attachments, applicants, what each person may see, reform task lists."""
