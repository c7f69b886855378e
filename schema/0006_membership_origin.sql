-- How a student came into a class: joining with its code is the student's own consent to that
-- teacher; being added by username is not, and must not let the teacher reset their password.
ALTER TABLE class_members ADD COLUMN joined_by_code INTEGER NOT NULL DEFAULT 0;
