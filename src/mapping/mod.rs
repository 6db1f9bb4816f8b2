//! Mapping rules between SCIM resources and C4C EmployeeCollection entities. Pure functions, no I/O.
