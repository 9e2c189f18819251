# The part of MuJoCo's C API (mujoco/mujoco.h, from the mujoco-core wheel's
# include folder) that the native MuJoCo environments use. Struct members are
# declared only where read; the C compiler sees the real layout, and
# _mujoco_envs.struct_fields reports every member read here so pgfast/mujoco.py can
# check that the library loaded at run time lays them out the same way.
cdef extern from "mujoco/mujoco.h" nogil:
    ctypedef double mjtNum

    enum: mjVERSION_HEADER

    ctypedef enum mjtObj:
        mjOBJ_BODY
        mjOBJ_SITE

    ctypedef enum mjtWarning:
        mjWARN_BADQPOS
        mjWARN_BADQVEL
        mjWARN_BADQACC
        mjNWARNING

    ctypedef enum mjtState:
        mjSTATE_INTEGRATION

    ctypedef struct mjVFS:
        pass

    ctypedef struct mjOption:
        mjtNum timestep

    ctypedef long long mjtSize

    ctypedef struct mjModel:
        mjtSize narena
        mjtSize nbuffer
        int nq
        int nv
        int nu
        int na
        int nbody
        int ngeom
        int nsite
        int ncam
        int nlight
        mjOption opt
        mjtNum* qpos0
        mjtNum* body_mass
        mjtNum* actuator_ctrlrange

    ctypedef struct mjWarningStat:
        int lastinfo
        int number

    ctypedef struct mjData:
        mjWarningStat warning[mjNWARNING]
        mjtNum time
        mjtNum* qpos
        mjtNum* qvel
        mjtNum* ctrl
        mjtNum* qacc
        mjtNum* xpos
        mjtNum* xipos
        mjtNum* site_xpos
        mjtNum* cinert
        mjtNum* cvel
        mjtNum* qfrc_actuator
        mjtNum* qfrc_constraint
        mjtNum* cfrc_ext

    int mj_version()
    const char* mj_versionString()
    mjModel* mj_loadXML(const char* filename, const mjVFS* vfs, char* error, int error_sz)
    void mj_deleteModel(mjModel* m)
    mjData* mj_makeData(const mjModel* m)
    void mj_deleteData(mjData* d)
    mjData* mj_copyData(mjData* dest, const mjModel* m, const mjData* src)
    void mj_resetData(const mjModel* m, mjData* d)
    void mj_step(const mjModel* m, mjData* d)
    void mj_forward(const mjModel* m, mjData* d)
    void mj_rnePostConstraint(const mjModel* m, mjData* d)
    int mj_name2id(const mjModel* m, int type, const char* name)
    int mj_stateSize(const mjModel* m, int sig)
    void mj_getState(const mjModel* m, const mjData* d, mjtNum* state, int sig)
    void mj_setState(const mjModel* m, mjData* d, const mjtNum* state, int sig)
