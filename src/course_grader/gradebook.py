"""nbgrader's Gradebook for the commands that write it, safe with a second writer.

Importing nbgrader takes seconds (its package imports its Jupyter server extensions), so only the
commands that need nbgrader's ORM import this module; ``export`` reads the tables directly
(:mod:`course_grader.scores`).
"""
from nbgrader.api import Gradebook, MissingEntry, Student
from sqlalchemy.exc import IntegrityError


class SharedGradebook(Gradebook):
    """nbgrader's Gradebook, safe when another process writes the same database at the same time.

    nbgrader's ``update_or_create_student`` is find-then-insert: two ``grade`` commands on different
    assignments both insert a new student and one fails on the unique key. Here the loser rolls back
    and finds the row the winner wrote.
    """

    def update_or_create_student(self, student_id, **kwargs):
        try:
            student = self.find_student(student_id)
        except MissingEntry:
            self.db.add(Student(id=student_id, **kwargs))
            try:
                self.db.commit()
            except IntegrityError:
                self.db.rollback()  # another process created it first
            student = self.find_student(student_id)
        for k, v in kwargs.items():
            setattr(student, k, v)
        self.db.commit()
        return student
