# The master of this checkout: configured by ../master.cfg from ../farm.toml.
import os

os.umask(0o077)  # before the log file: the master's folder holds the session signing key
from buildbot.master import BuildMaster
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

basedir = os.path.abspath(os.path.dirname(__file__))
configfile = os.path.join(basedir, "..", "master.cfg")
rotateLength = 10000000
maxRotatedFiles = 10
umask = 0o077  # private: state.sqlite holds the session signing key

application = service.Application('buildmaster')
logfile = LogFile.fromFullPath(os.path.join(basedir, "twistd.log"), rotateLength=rotateLength,
                               maxRotatedFiles=maxRotatedFiles)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)

m = BuildMaster(basedir, configfile, umask)
m.setServiceParent(application)
m.log_rotation.rotateLength = rotateLength
m.log_rotation.maxRotatedFiles = maxRotatedFiles
